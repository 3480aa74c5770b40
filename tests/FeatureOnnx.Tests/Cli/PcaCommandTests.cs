using System.CommandLine;
using FeatureOnnx.Cli;
using FeatureOnnx.Formats;
using FeatureOnnx.PostProcessing;
using PcaFixtures = FeatureOnnx.Tests.PostProcessing.Fixtures;
using Xunit;

namespace FeatureOnnx.Tests.Cli;

[Trait("Category", TestCategory.Fast)]
public sealed class PcaCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("featureonnx-pcacli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int Run(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }

    [Fact]
    public void Fit_then_transform_reproduces_sklearns_whitened_projection()
    {
        var model = Path.Combine(_dir, "pca.npz");
        var output = Path.Combine(_dir, "out.npy");
        Assert.Equal(0, Run("pca", "fit", PcaFixtures.Path("features_200x40.npy"), "--variance", "0.9", "--whiten", "-o", model, "-q", "--backend", "managed", "--chunk-rows", "13"));
        Assert.Equal(0, Run("pca", "transform", model, PcaFixtures.Path("test_200x40.npy"), "-o", output));
        var reference = PcaFixtures.Npz("case_var90_whiten.npz");
        using var reader = NpyReader.Open(output);
        Assert.Equal([4L], reader.RowShape);
        Assert.True(PcaFixtures.ColumnRelativeError(PcaFixtures.ToDoubles(reader.ReadAll()), reference["transformed_test"].ToDoubles(), 4) <= 1e-6);
    }

    [Fact]
    public void Postprocess_pools_and_normalises_maps()
    {
        var maps = Path.Combine(_dir, "maps.npy");
        var pooled = Path.Combine(_dir, "pooled.npy");
        var r = PcaFixtures.Npz("postprocess.npz");
        using (var writer = new NpyWriter(maps, [8, 3, 4]))
        {
            writer.Append(r["maps"].ToDoubles().Select(v => (float)v).ToArray());
            writer.Complete();
        }
        Assert.Equal(0, Run("postprocess", maps, "--pool", "avg", "--l2", "-o", pooled));
        using var reader = NpyReader.Open(pooled);
        Assert.Equal([8L], reader.RowShape);
        var got = reader.ReadAll();
        var expected = r["avg_l2"].ToDoubles();
        for (var i = 0; i < got.Length; i++) Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-7);
    }

    [Fact]
    public void Postprocess_flatten_alone_reshapes_maps_to_vectors()
    {
        var maps = Path.Combine(_dir, "maps.npy");
        var flat = Path.Combine(_dir, "flat.npy");
        var r = PcaFixtures.Npz("postprocess.npz");
        using (var writer = new NpyWriter(maps, [8, 3, 4]))
        {
            writer.Append(r["maps"].ToDoubles().Select(v => (float)v).ToArray());
            writer.Complete();
        }
        Assert.Equal(0, Run("postprocess", maps, "--pool", "flatten", "-o", flat));
        using var reader = NpyReader.Open(flat);
        Assert.Equal(5, reader.Rows);
        Assert.Equal([96L], reader.RowShape);
        Assert.Equal(r["flatten"].ToDoubles(), PcaFixtures.ToDoubles(reader.ReadAll()));
        Assert.Equal(1, Run("postprocess", maps, "-o", flat)); // nothing asked
    }

    [Fact]
    public void Bad_arguments_exit_1_or_fail_validation()
    {
        var model = Path.Combine(_dir, "pca.npz");
        Assert.NotEqual(0, Run("pca", "fit", PcaFixtures.Path("features_200x40.npy"), "-o", model)); // neither -k nor --variance
        Assert.Equal(1, Run("pca", "fit", Path.Combine(_dir, "missing.npy"), "-k", "2", "-o", model));
        Assert.Equal(1, Run("pca", "fit", PcaFixtures.Path("features_200x40.npy"), "-k", "99", "-o", model));
        Assert.False(File.Exists(model));
    }
}

/// <summary>pca fit and pca transform refuse to replace an existing output file without --overwrite.</summary>
[Trait("Category", TestCategory.Process)]
public sealed class PcaCommandOverwriteTests
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
        using var reader = NpyReader.Open(output);
        Assert.Equal((200L, 3L), (reader.Rows, reader.RowShape[0]));
    }
}
