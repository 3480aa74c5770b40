using FeatureOnnx.PostProcessing;
using MathNet.Numerics.LinearAlgebra;
using Xunit;
using Xunit.Abstractions;

namespace FeatureOnnx.Tests.PostProcessing;

[Trait("Category", TestCategory.Fast)]
public sealed class SymmetricEigenTests(ITestOutputHelper output)
{
    /// <summary>A = Q diag(values) Q^T with a random orthogonal Q (QR of a seeded Gaussian matrix).</summary>
    private static double[] WithSpectrum(double[] values, int seed)
    {
        var n = values.Length;
        var random = new Random(seed);
        var q = Matrix<double>.Build.Dense(n, n, (_, _) => random.NextDouble() - 0.5).QR().Q;
        var a = q * Matrix<double>.Build.DenseOfDiagonalArray(values) * q.Transpose();
        var result = new double[n * n];
        for (var i = 0; i < n; i++) for (var j = 0; j < n; j++) result[i * n + j] = (a[i, j] + a[j, i]) / 2;
        return result;
    }

    [Theory]
    [InlineData(257, "decaying")]
    [InlineData(300, "clustered")]
    [InlineData(2, "decaying")]
    public void Matches_the_spectrum_with_orthonormal_residual_free_vectors(int n, string kind)
    {
        // clustered: 10 distinct values each repeated many times, plus a noise floor of near-equal values.
        var values = kind == "decaying"
            ? Enumerable.Range(0, n).Select(i => 100 * Math.Pow(0.97, i)).ToArray()
            : Enumerable.Range(0, n).Select(i => i < 200 ? 10.0 - i / 20 : 1e-3 * (1 + 1e-9 * i)).ToArray();
        var a = WithSpectrum(values, seed: n);
        var original = (double[])a.Clone();
        var k = Math.Min(n, 60);
        var (got, vectors) = SymmetricEigen.Largest(a, n, k);
        var expected = values.OrderByDescending(v => v).ToArray();
        var valueError = got.Zip(expected, (x, y) => Math.Abs(x - y)).Max() / expected[0];
        // Residual ||A x - lambda x|| / ||A|| and orthonormality of the k vectors.
        double residual = 0, orthogonality = 0;
        for (var c = 0; c < k; c++)
        {
            for (var i = 0; i < n; i++)
            {
                var ax = 0.0;
                for (var j = 0; j < n; j++) ax += original[i * n + j] * vectors[c * n + j];
                residual = Math.Max(residual, Math.Abs(ax - got[c] * vectors[c * n + i]) / expected[0]);
            }
            for (var c2 = 0; c2 <= c; c2++)
            {
                var dot = 0.0;
                for (var i = 0; i < n; i++) dot += vectors[c * n + i] * vectors[c2 * n + i];
                orthogonality = Math.Max(orthogonality, Math.Abs(dot - (c == c2 ? 1 : 0)));
            }
        }
        output.WriteLine($"n={n} {kind}: eigenvalue error {valueError:E2}, residual {residual:E2}, orthogonality {orthogonality:E2}");
        Assert.True(valueError < 1e-12, $"eigenvalues off by {valueError:E2}");
        Assert.True(residual < 1e-11, $"residual {residual:E2}");
        Assert.True(orthogonality < 1e-10, $"orthogonality {orthogonality:E2}");
    }

    [Fact]
    public void Covariance_of_fewer_rows_than_features_converges()
    {
        // 100 rows in 600 dimensions: rank 99, so T ends in a long block of round-off-sized entries, which the QL
        // step must deflate with an absolute test (it looped forever on this before).
        const int rows = 100, d = 600;
        var random = new Random(7);
        var data = new float[rows * d];
        // A rank-16 signal with decaying column scales plus small noise, around a mean of 3.
        var latent = Enumerable.Range(0, rows * 16).Select(_ => random.NextDouble() - 0.5).ToArray();
        var basis = Enumerable.Range(0, 16 * d).Select(_ => random.NextDouble() - 0.5).ToArray();
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < d; c++)
        {
            var signal = 0.0;
            for (var l = 0; l < 16; l++) signal += latent[r * 16 + l] * basis[l * d + c];
            data[r * d + c] = (float)(3 + signal * (2 - 1.9 * c / d) + 0.1 * (random.NextDouble() - 0.5));
        }
        var covariance = new StreamingCovariance(d);
        covariance.Add(data);
        var matrix = covariance.Covariance();
        var reference = Matrix<double>.Build.Dense(d, d, (double[])matrix.Clone()).Evd(Symmetricity.Symmetric).EigenValues
            .Select(c => c.Real).OrderByDescending(v => v).ToArray();
        var (values, vectors) = SymmetricEigen.Largest(matrix, d, 30);
        var worst = Enumerable.Range(0, 99).Max(i => Math.Abs(values[i] - reference[i])) / reference[0];
        output.WriteLine($"rank-deficient 100x600: eigenvalue error {worst:E2}, smallest kept {values[98]:E3}, next {values[99]:E1}");
        Assert.True(worst < 1e-12);
        Assert.True(Math.Abs(values[99]) < 1e-12 * values[0]);
        Assert.Equal(30 * d, vectors.Length);
    }

    [Theory]
    [InlineData("k10")]
    [InlineData("var95")]
    [InlineData("var90_whiten")]
    [InlineData("k40_all")]
    [InlineData("rank_deficient_k20_whiten")] // rows < D: a block of round-off-sized entries in T that must deflate
    [InlineData("rank_deficient_var99")]
    [InlineData("odd_k7_whiten")]
    public void Pca_with_the_simd_solver_matches_scikit_learn(string name)
    {
        var reference = Fixtures.Npz($"case_{name}.npz");
        var ratio = reference["is_ratio"].ToBoolean();
        var options = new PcaFitOptions
        {
            Components = ratio ? null : (int)reference["n_components_param"].ToDoubles()[0],
            VarianceRatio = ratio ? reference["n_components_param"].ToDoubles()[0] : null,
            Whiten = reference["whiten"].ToBoolean(),
            Backend = PcaBackend.Managed,
            MathNetMaxDimension = 0,
        };
        var fit = new PcaFitter(options).Fit(Fixtures.Path($"features_{reference["data"]}.npy"));
        Assert.StartsWith("managed-simd householder", fit.Info.EigenBackend);
        Assert.Equal(reference["n_components"].ToInt64(), fit.Model.Components);
        var components = Fixtures.RelativeError(fit.Model.ComponentMatrix, reference["components"].ToDoubles(), fit.Model.Dimension);
        var variance = fit.Model.ExplainedVarianceRatio.ToArray().Zip(reference["explained_variance_ratio"].ToDoubles(), (x, y) => Math.Abs(x - y) / y).Max();
        output.WriteLine($"{name}: components {components:E2}, explained_variance_ratio {variance:E2}");
        Assert.True(components <= 1e-6 && variance <= 1e-6);
    }
}
