using System.Runtime.CompilerServices;
using FeatureOnnx.Examples;

namespace FeatureOnnx.Tests.Examples;

/// <summary>The README's C# example is ReadmeExample.cs, word for word, and it runs.</summary>
public sealed class ReadmeExampleTests
{
    private static string ThisFolder([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Readme_quotes_the_example_file()
    {
        var readme = Path.Combine(ThisFolder(), "..", "..", "..", "README.md");
        const string marker = "<!-- example: tests/FeatureOnnx.Tests/Examples/ReadmeExample.cs -->";
        var text = File.ReadAllText(readme).ReplaceLineEndings("\n");
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, $"README.md lacks the line {marker}");
        var start = text.IndexOf("```csharp\n", at, StringComparison.Ordinal) + "```csharp\n".Length;
        var end = text.IndexOf("```\n", start, StringComparison.Ordinal);
        var quoted = text[start..end];
        var file = File.ReadAllText(Path.Combine(ThisFolder(), "ReadmeExample.cs")).ReplaceLineEndings("\n");
        Assert.Equal(file, quoted);
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public async Task Example_extracts_a_folder_and_embeds_one_image_alike()
    {
        using var tmp = new Fixtures.TempDir();
        var images = Directory.CreateDirectory(tmp.File("images")).FullName;
        var photo = Path.Combine(images, "fruits.jpg");
        File.Copy(Fixtures.PathOf("photos", "opencv_fruits.jpg"), photo);

        var result = await ReadmeExample.ExtractFolder(images, tmp.File("out"));
        var vector = ReadmeExample.Embed(File.ReadAllBytes(photo));

        Assert.Equal(1, result.Extracted);
        var (shape, rows) = Fixtures.ReadFloatNpy(tmp.File("out/pooled.npy"));
        Assert.Equal(new long[] { 1, 512 }, shape);
        Assert.Equal(512, vector.Length);
        Assert.True(Fixtures.Cosine(rows, vector) >= 0.99999);
    }
}
