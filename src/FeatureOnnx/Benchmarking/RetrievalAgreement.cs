using System.Numerics.Tensors;

namespace FeatureOnnx.Benchmarking;

/// <summary>How well a feature set retrieves, by labels.</summary>
/// <param name="Rows">Rows searched.</param>
/// <param name="Labels">Distinct labels.</param>
/// <param name="Queries">Rows used as queries: those whose label at least one other row carries.</param>
/// <param name="PrecisionAtOne">Leave-one-out precision at 1: the share of queries whose nearest other row (cosine) carries the query's label.</param>
public sealed record RetrievalScore(int Rows, int Labels, int Queries, double PrecisionAtOne);

/// <summary>Retrieval by one feature set against another over the same rows (same inputs, in the same order).</summary>
/// <param name="Candidate">The candidate's score (e.g. int8 features).</param>
/// <param name="Reference">The reference's score (e.g. fp32 features).</param>
/// <param name="K">Neighbours compared per row.</param>
/// <param name="MeanOverlap">Mean over rows of |candidate's K nearest ∩ reference's K nearest| / K.</param>
/// <param name="MinOverlap">The smallest such overlap.</param>
/// <param name="MinCosine">Smallest per-row cosine between candidate and reference rows.</param>
/// <param name="MedianCosine">Median per-row cosine.</param>
public sealed record RetrievalComparison(RetrievalScore Candidate, RetrievalScore Reference, int K, double MeanOverlap, double MinOverlap, double MinCosine, double MedianCosine)
{
    /// <summary>Candidate's precision at 1 minus the reference's (negative: the candidate retrieves worse).</summary>
    public double PrecisionAtOneChange => Candidate.PrecisionAtOne - Reference.PrecisionAtOne;
}

/// <summary>
/// Exact nearest neighbours by cosine similarity, and the retrieval figures users choose a precision or provider by:
/// leave-one-out precision at 1 against labels, and how much two feature sets' neighbour lists overlap. Brute force
/// (rows x rows dot products, see <see cref="Neighbours"/>): meant for evaluation sets, not a million-image index.
/// </summary>
public static class RetrievalAgreement
{
    /// <summary>
    /// The <paramref name="k"/> most cosine-similar other rows of each row, most similar first; ties go to the lower row
    /// index, so the result is deterministic. A row of zeros has cosine 0 with every row. Cost: rows² x width
    /// multiply-adds, spread over the cores (10,000 rows of 512 floats: 5e10).
    /// </summary>
    /// <param name="features">Rows of equal width, flattened.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="k">Neighbours per row (at most rows - 1).</param>
    /// <param name="cancellation">Stops the search between rows.</param>
    public static int[][] Neighbours(ReadOnlySpan<float> features, int rows, int k, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 2);
        if (features.Length % rows != 0) throw new ArgumentException($"{features.Length} values do not split into {rows} rows.", nameof(features));
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, rows - 1);
        var width = features.Length / rows;
        var unit = new float[features.Length];
        for (var r = 0; r < rows; r++)
        {
            var row = features.Slice(r * width, width);
            var norm = MathF.Sqrt(TensorPrimitives.Dot(row, row));
            if (norm > 0 && float.IsFinite(norm)) TensorPrimitives.Divide(row, norm, unit.AsSpan(r * width, width));
        }
        var result = new int[rows][];
        Parallel.For(0, rows, new ParallelOptions { CancellationToken = cancellation }, i =>
        {
            var mine = unit.AsSpan(i * width, width);
            // The k best so far, best first: (score descending, index ascending); j rises, so an equal score never displaces.
            var scores = new float[k];
            var indices = new int[k];
            var held = 0;
            for (var j = 0; j < rows; j++)
            {
                if (j == i) continue;
                var score = TensorPrimitives.Dot(mine, unit.AsSpan(j * width, width));
                if (float.IsNaN(score)) score = float.NegativeInfinity;
                if (held == k && score <= scores[k - 1]) continue;
                var at = held < k ? held++ : k - 1;
                while (at > 0 && scores[at - 1] < score)
                {
                    scores[at] = scores[at - 1];
                    indices[at] = indices[at - 1];
                    at--;
                }
                scores[at] = score;
                indices[at] = j;
            }
            result[i] = indices;
        });
        return result;
    }

    /// <summary>
    /// Leave-one-out precision at 1 of <paramref name="neighbours"/> (from <see cref="Neighbours"/>): each row whose label
    /// another row carries is a query, and it scores when its nearest other row has its label. Rows with a label
    /// of their own cannot score and are not queries.
    /// </summary>
    public static RetrievalScore PrecisionAtOne(int[][] neighbours, IReadOnlyList<string> labels)
    {
        if (neighbours.Length != labels.Count) throw new ArgumentException($"{neighbours.Length} rows against {labels.Count} labels.", nameof(labels));
        var counts = labels.GroupBy(l => l, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        int queries = 0, hits = 0;
        for (var i = 0; i < labels.Count; i++)
        {
            if (counts[labels[i]] < 2) continue;
            queries++;
            if (labels[neighbours[i][0]] == labels[i]) hits++;
        }
        return new RetrievalScore(labels.Count, counts.Count, queries, queries == 0 ? double.NaN : (double)hits / queries);
    }

    /// <summary>
    /// Compares <paramref name="candidate"/> with <paramref name="reference"/>: both feature sets' precision at 1 against
    /// <paramref name="labels"/>, the overlap of their <paramref name="k"/> nearest neighbours row by row, and the
    /// per-row cosine between them.
    /// </summary>
    public static RetrievalComparison Compare(ReadOnlySpan<float> candidate, ReadOnlySpan<float> reference, int rows, IReadOnlyList<string> labels, int k = 10, CancellationToken cancellation = default)
    {
        if (candidate.Length != reference.Length) throw new ArgumentException($"{candidate.Length} values against {reference.Length} in the reference.", nameof(candidate));
        k = Math.Min(k, rows - 1);
        var a = Neighbours(candidate, rows, k, cancellation);
        var b = Neighbours(reference, rows, k, cancellation);
        var overlaps = new double[rows];
        for (var i = 0; i < rows; i++) overlaps[i] = a[i].Intersect(b[i]).Count() / (double)k;
        var width = candidate.Length / rows;
        var cosines = new double[rows];
        for (var i = 0; i < rows; i++)
            cosines[i] = Cosine(candidate.Slice(i * width, width), reference.Slice(i * width, width));
        Array.Sort(cosines);
        var median = rows % 2 == 1 ? cosines[rows / 2] : (cosines[rows / 2 - 1] + cosines[rows / 2]) / 2;
        return new RetrievalComparison(PrecisionAtOne(a, labels), PrecisionAtOne(b, labels), k, overlaps.Average(), overlaps.Min(), cosines[0], median);
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        if (na == 0 && nb == 0) return 1;
        if (na == 0 || nb == 0) return 0;
        return Math.Min(1, dot / Math.Sqrt(na * nb));
    }
}
