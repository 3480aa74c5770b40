using System.Runtime.InteropServices;
using FeatureOnnx.Benchmarking;
using PcaFixtures = FeatureOnnx.Tests.PostProcessing.Fixtures;

namespace FeatureOnnx.Tests.Benchmarking;

/// <summary>
/// Nearest neighbours and precision at 1 against scikit-learn (NearestNeighbors, cosine, brute force; fixtures/pca/
/// retrieval.npz from export-scripts/make_pca_fixtures.py) and against cases worked by hand.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class RetrievalAgreementTests
{
    private static readonly Dictionary<string, FeatureOnnx.Formats.NpyArray> Sklearn = PcaFixtures.Npz("retrieval.npz");

    private static float[] Floats(string name) => Sklearn[name].ToDoubles().Select(v => (float)v).ToArray();

    private static long[] Longs(string name) => MemoryMarshal.Cast<byte, long>(Sklearn[name].Data).ToArray();

    private static List<string> Labels() => Longs("labels").Select(l => $"class{l}").ToList();

    [Theory]
    [InlineData("reference")]
    [InlineData("candidate")]
    public void Neighbours_equal_sklearns_ten_nearest_by_cosine(string set)
    {
        var rows = Labels().Count;
        var ours = RetrievalAgreement.Neighbours(Floats(set), rows, 10);
        var expected = Longs($"neighbours_{set}");
        for (var i = 0; i < rows; i++)
            Assert.Equal(expected.AsSpan(i * 10, 10).ToArray(), ours[i].Select(j => (long)j).ToArray());
    }

    [Fact]
    public void Comparison_gives_sklearns_precision_at_one_overlap_and_cosines()
    {
        var labels = Labels();
        var r = RetrievalAgreement.Compare(Floats("candidate"), Floats("reference"), labels.Count, labels, k: 10);
        Assert.Equal(Sklearn["precision_candidate"].ToDoubles()[0], r.Candidate.PrecisionAtOne, 12);
        Assert.Equal(Sklearn["precision_reference"].ToDoubles()[0], r.Reference.PrecisionAtOne, 12);
        Assert.Equal(Sklearn["queries"].ToInt64(), r.Candidate.Queries);
        Assert.Equal(240, r.Candidate.Rows);
        Assert.Equal(17, r.Candidate.Labels);
        Assert.Equal(Sklearn["mean_overlap"].ToDoubles()[0], r.MeanOverlap, 12);
        Assert.Equal(Sklearn["min_cosine"].ToDoubles()[0], r.MinCosine, 6);
        Assert.Equal(Sklearn["median_cosine"].ToDoubles()[0], r.MedianCosine, 6);
        Assert.True(r.MeanOverlap is > 0.5 and < 1, $"the fixture's noise should move some neighbours: {r.MeanOverlap}");
    }

    [Fact]
    public void Hand_worked_case_scores_each_query_and_skips_lone_labels()
    {
        // Unit vectors at 0, 10, 100, 110 and 250 degrees, and a zero row; labels a, b, b, b, c, c.
        // Row 0 (a): its label is no other row's: not a query. Row 1 (b): nearest row 0 (cos 10° = 0.98): miss.
        // Rows 2 and 3 (b): each other (0.98): hits. Row 4 (c): every unit row is cos 140°..250° < 0, the zero row is 0:
        // row 5, a hit. Row 5 (c, zeros): cosine 0 with all, the tie goes to row 0: miss. 3 of 5 queries.
        float[] angles = [0, 10, 100, 110, 250];
        var features = angles.SelectMany(a => new[] { MathF.Cos(a * MathF.PI / 180), MathF.Sin(a * MathF.PI / 180) }).Concat([0f, 0f]).ToArray();
        var nb = RetrievalAgreement.Neighbours(features, 6, 2);
        Assert.Equal([1, 5], nb[0]); // cos 10° = 0.98, then the zero row (0) before 100° (-0.17)
        Assert.Equal([5, 0], nb[4]);
        Assert.Equal([0, 1], nb[5]);
        var score = RetrievalAgreement.PrecisionAtOne(nb, ["a", "b", "b", "b", "c", "c"]);
        Assert.Equal(5, score.Queries);
        Assert.Equal(3, score.Labels);
        Assert.Equal(0.6, score.PrecisionAtOne, 12);
    }

    [Fact]
    public void Equal_scores_go_to_the_lower_row_index()
    {
        // Rows 1, 2 and 3 are the same vector: each is equally near row 0, and row 0's list must be 1, 2, 3 in that order.
        float[] features = [1, 0, 1, 1, 1, 1, 1, 1, 0, 1];
        var nb = RetrievalAgreement.Neighbours(features, 5, 3);
        Assert.Equal([1, 2, 3], nb[0]);
        Assert.Equal([2, 3, 0], nb[1]);     // its twins (cosine 1) first, then row 0 (0.707) before row 4 (0.707): lower index
    }

    [Fact]
    public void A_label_no_other_row_carries_everywhere_gives_no_precision()
    {
        var nb = RetrievalAgreement.Neighbours(new float[] { 1, 0, 0, 1, 1, 1 }, 3, 1);
        var score = RetrievalAgreement.PrecisionAtOne(nb, ["x", "y", "z"]);
        Assert.Equal(0, score.Queries);
        Assert.True(double.IsNaN(score.PrecisionAtOne));
    }

    [Fact]
    public void Refuses_k_beyond_the_other_rows_and_ragged_rows()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RetrievalAgreement.Neighbours(new float[6], 3, 3));
        Assert.Throws<ArgumentException>(() => RetrievalAgreement.Neighbours(new float[7], 3, 1));
        Assert.Throws<ArgumentException>(() => RetrievalAgreement.PrecisionAtOne([[1], [0]], ["a"]));
    }
}
