using FeatureOnnx.PostProcessing;

namespace FeatureOnnx.Tests.Cli;

/// <summary>pca fit and pca transform refuse to replace an existing output file without --overwrite.</summary>
public sealed class PcaCommandTests
{
    private static string Features => Fixtures.PathOf("pca", "features_200x40.npy");

    [Fact]
    public void Fit_refuses_an_existing_model_file_unless_overwrite()
    {
        using var tmp = new Fixtures.TempDir();
        var model = tmp.File("pca.npz");
        File.WriteAllText(model, "mine");
        var refused = CliProcess.Run("pca", "fit", Features, "-k", "3", "-o", model, "-q");
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"error: {model} already exists. Choose another file or pass --overwrite to replace it.\n", refused.Err);
        Assert.Equal("mine", File.ReadAllText(model));

        Assert.Equal(0, CliProcess.Run("pca", "fit", Features, "-k", "3", "-o", model, "-q", "--overwrite").ExitCode);
        Assert.Equal(3, PcaModel.Load(model).Components);
    }

    [Fact]
    public void Transform_refuses_an_existing_output_unless_overwrite()
    {
        using var tmp = new Fixtures.TempDir();
        var model = tmp.File("pca.npz");
        Assert.Equal(0, CliProcess.Run("pca", "fit", Features, "-k", "3", "-o", model, "-q").ExitCode);
        var output = tmp.File("out.npy");
        File.WriteAllText(output, "mine");
        var refused = CliProcess.Run("pca", "transform", model, Features, "-o", output);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("already exists. Choose another file or pass --overwrite", refused.Err);
        Assert.Equal("mine", File.ReadAllText(output));

        Assert.Equal(0, CliProcess.Run("pca", "transform", model, Features, "-o", output, "--overwrite").ExitCode);
        using var reader = FeatureOnnx.Sinks.NpyReader.Open(output);
        Assert.Equal((200L, 3L), (reader.Rows, reader.RowShape[0]));
    }
}
