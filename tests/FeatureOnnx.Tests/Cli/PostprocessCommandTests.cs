namespace FeatureOnnx.Tests.Cli;

/// <summary>postprocess refuses to replace an existing output file without --overwrite.</summary>
[Trait("Category", TestCategory.Process)]
public sealed class PostprocessCommandTests
{
    [Fact]
    public void Refuses_an_existing_output_unless_overwrite()
    {
        using var tmp = new Fixtures.TempDir();
        var output = tmp.File("out.npy");
        File.WriteAllText(output, "mine");
        var features = Fixtures.PathOf("pca", "features_200x40.npy");
        var refused = CliProcess.Run("postprocess", features, "--l2", "-o", output);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"error: {output} already exists. Choose another file or pass --overwrite to replace it.\n", refused.Err);
        Assert.Equal("mine", File.ReadAllText(output));

        Assert.Equal(0, CliProcess.Run("postprocess", features, "--l2", "-o", output, "--overwrite").ExitCode);
        using var reader = FeatureOnnx.Formats.NpyReader.Open(output);
        var row = reader.ReadAll().AsSpan(0, 40).ToArray();
        Assert.Equal(1.0, Math.Sqrt(row.Sum(v => (double)v * v)), 6);
    }
}
