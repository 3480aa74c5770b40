using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

/// <summary>Levenshtein distances worked by hand.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class EditDistanceTests
{
    [Theory]
    [InlineData("kitten", "sitting", false, 3)] // k->s, e->i, +g
    [InlineData("", "abc", false, 3)]
    [InlineData("abc", "abc", false, 0)]
    [InlineData("--layers", "-layers", false, 1)]
    [InlineData("Relu", "relu", false, 1)]
    [InlineData("Relu", "relu", true, 0)] // tensor names are compared case-insensitively
    [InlineData("layer4", "layr3", true, 2)]
    public void Distance_is_insertions_deletions_and_substitutions(string a, string b, bool ignoreCase, int expected)
    {
        Assert.Equal(expected, EditDistance.Between(a, b, ignoreCase));
        Assert.Equal(expected, EditDistance.Between(b, a, ignoreCase)); // symmetric
    }
}
