using Xunit;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Tests.PostProcessing;

[Trait("Category", TestCategory.Fast)]
public sealed class PcaModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("featureonnx-pca-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Saved_model_has_numpy_entries_and_loads_back_identically()
    {
        var fitted = new PcaFitter(new PcaFitOptions { Components = 5, Whiten = true, FeatureName = "fixture/200x40", Backend = PcaBackend.Managed })
            .Fit(Fixtures.Path("features_200x40.npy")).Model;
        var path = Path.Combine(_dir, "pca.npz");
        fitted.Save(path);
        Assert.False(File.Exists(path + ".partial"));

        var entries = NpzArchive.Read(path);
        Assert.Equal(PcaModel.FormatName, entries["format"].ToString());
        Assert.Equal("<f8", entries["components"].DType);
        Assert.Equal([5L, 40L], entries["components"].Shape);
        Assert.Equal([40L], entries["mean"].Shape);
        Assert.Equal("|b1", entries["whiten"].DType);
        Assert.Empty(entries["whiten"].Shape);
        Assert.Equal(200, entries["n_samples"].ToInt64());
        Assert.Equal(40, entries["n_features"].ToInt64());
        Assert.Equal(5, entries["n_components"].ToInt64());
        Assert.Equal("fixture/200x40", entries["feature"].ToString());
        Assert.Equal("u_based", entries["sign_convention"].ToString());

        var loaded = PcaModel.Load(path);
        Assert.Equal(fitted.ComponentMatrix.ToArray(), loaded.ComponentMatrix.ToArray());
        Assert.Equal(fitted.Mean.ToArray(), loaded.Mean.ToArray());
        Assert.Equal(fitted.ExplainedVariance.ToArray(), loaded.ExplainedVariance.ToArray());
        Assert.Equal(fitted.ExplainedVarianceRatio.ToArray(), loaded.ExplainedVarianceRatio.ToArray());
        Assert.Equal(fitted.NoiseVariance, loaded.NoiseVariance);
        Assert.True(loaded.Whiten);

        // The loaded model still projects like sklearn's whitened PCA.
        var reference = Fixtures.Npz("case_k5_whiten.npz");
        var (rows, n, _) = Fixtures.Features("test_200x40.npy");
        var projected = new float[n * 5];
        loaded.Transform(rows, projected);
        Assert.True(Fixtures.ColumnRelativeError(Fixtures.ToDoubles(projected), reference["transformed_test"].ToDoubles(), 5) <= 1e-6);
    }

    [Fact]
    public void Model_built_from_sklearn_arrays_transforms_like_sklearn()
    {
        // A model made from sklearn's own arrays (what a Python user would numpy.savez) gives sklearn's transform.
        var r = Fixtures.Npz("case_var90_whiten.npz");
        var model = new PcaModel(r["mean"].ToDoubles(), r["components"].ToDoubles(), r["explained_variance"].ToDoubles(),
            r["explained_variance_ratio"].ToDoubles(), r["noise_variance"].ToDoubles()[0], whiten: true, samplesSeen: 200);
        var (rows, n, _) = Fixtures.Features("test_200x40.npy");
        var projected = new float[n * model.Components];
        model.Transform(rows, projected);
        Assert.True(Fixtures.ColumnRelativeError(Fixtures.ToDoubles(projected), r["transformed_test"].ToDoubles(), model.Components) <= 1e-6);
        Assert.Equal(r["singular_values"].ToDoubles(), model.SingularValues.ToArray(), (a, b) => Math.Abs(a - b) <= 1e-9 * b);
    }

    [Fact]
    public void Transform_rejects_rows_of_the_wrong_length()
    {
        var model = new PcaFitter(new PcaFitOptions { Components = 3, Backend = PcaBackend.Managed }).Fit(Fixtures.Path("features_200x40.npy")).Model;
        var e = Assert.Throws<ArgumentException>(() => model.Transform(new float[41], new float[3]));
        Assert.Contains("40", e.Message);
    }

    [Fact]
    public void Loading_something_else_names_the_file()
    {
        var path = Path.Combine(_dir, "other.npz");
        NpzArchive.Write(path, [new("x", NpyArray.Of([1.0, 2.0], 2))]);
        var e = Assert.Throws<InvalidDataException>(() => PcaModel.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'mean'", e.Message);
        var notZip = Path.Combine(_dir, "not.npz");
        File.WriteAllText(notZip, "hello");
        Assert.Contains(notZip, Assert.Throws<InvalidDataException>(() => PcaModel.Load(notZip)).Message);
    }
}
