using MathNet.Numerics.LinearAlgebra;

namespace FeatureOnnx.PostProcessing;

/// <summary>
/// One way to find the largest eigenpairs of a covariance matrix. <see cref="PcaFitter"/> picks one per fit (in
/// <c>ChooseNumerics</c>, the one place that does) and records <see cref="Description"/> in <see cref="PcaFitInfo.EigenBackend"/>.
/// </summary>
internal interface ISymmetricEigenSolver
{
    /// <summary>What computed the eigendecomposition, e.g. "mathnet-managed".</summary>
    string Description { get; }

    /// <summary>
    /// Eigenvalues of the symmetric <paramref name="d"/> x <paramref name="d"/> row-major <paramref name="covariance"/>
    /// (destroyed; it may be longer than d*d), descending, at least <paramref name="count"/> of them, and the
    /// eigenvectors of the first <paramref name="count"/> as rows (count x d). <paramref name="countFromValues"/>,
    /// when given, lets a solver that has every eigenvalue before any eigenvector compute fewer eigenvectors.
    /// </summary>
    (double[] Values, double[] Vectors) Largest(double[] covariance, int d, int count, Func<double[], int>? countFromValues);
}

/// <summary>MathNet.Numerics' dense EVD (all eigenvectors, scalar): exact and quick enough up to a few hundred features.</summary>
internal sealed class MathNetEigenSolver : ISymmetricEigenSolver
{
    public string Description => "mathnet-managed";

    public (double[] Values, double[] Vectors) Largest(double[] covariance, int d, int count, Func<double[], int>? countFromValues)
    {
        var evd = Matrix<double>.Build.Dense(d, d, covariance.Length == d * d ? covariance : covariance[..(d * d)]).Evd(Symmetricity.Symmetric);
        var raw = evd.EigenValues.Select(c => c.Real).ToArray();
        var order = Enumerable.Range(0, d).OrderByDescending(i => raw[i]).ThenBy(i => i).Take(count).ToArray();
        var values = new double[count];
        var vectors = new double[(long)count * d];
        var v = evd.EigenVectors;
        for (var c = 0; c < count; c++)
        {
            values[c] = raw[order[c]];
            var column = v.Column(order[c]);
            for (var i = 0; i < d; i++) vectors[(long)c * d + i] = column[i];
        }
        return (values, vectors);
    }
}

/// <summary><see cref="SymmetricEigen"/>: managed SIMD, eigenvectors for the kept components only; for D in the thousands.</summary>
internal sealed class ManagedEigenSolver(int maxDegreeOfParallelism) : ISymmetricEigenSolver
{
    public string Description => "managed-simd householder+ql+inverse-iteration";

    public (double[] Values, double[] Vectors) Largest(double[] covariance, int d, int count, Func<double[], int>? countFromValues) =>
        SymmetricEigen.Largest(covariance, d, count, maxDegreeOfParallelism, countFromValues);
}

/// <summary>LAPACK's <c>dsyevr</c> through <see cref="OpenBlas"/>, asked for the top <c>count</c> pairs alone.</summary>
internal sealed class OpenBlasEigenSolver(OpenBlas blas) : ISymmetricEigenSolver
{
    public string Description => $"openblas dsyevr ({blas.LibraryPath})";

    public (double[] Values, double[] Vectors) Largest(double[] covariance, int d, int count, Func<double[], int>? countFromValues)
    {
        var values = new double[count];
        var vectors = new double[(long)count * d];
        blas.TopEigen(covariance, d, count, values, vectors);
        return (values, vectors);
    }
}
