using FeatureOnnx.Formats;
using FeatureOnnx.Cli;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Cli;

[Trait("Category", TestCategory.Fast)]
public sealed class FailureSummaryTests
{
    [Theory]
    [InlineData("no such file or folder", "no such file or folder")]
    [InlineData("truncated JPEG: premature end of data segment", "truncated JPEG")]
    [InlineData("truncated PNG: no IEND chunk (3111 bytes)", "truncated PNG")]
    [InlineData("empty file (0 bytes)", "empty file")]
    [InlineData("not a recognised image (supported: JPEG, PNG, BMP, GIF, TIFF, WebP, TGA, PBM/PGM/PPM)", "not a recognised image")]
    [InlineData("duplicate input: same file as 'a.jpg', extracted once", "duplicate input")]
    [InlineData("decoder failure (IndexOutOfRangeException): Index was outside the bounds of the array.", "decoder failure")]
    [InlineData("PNG header declares 30000x30000 = 900 megapixels, above the limit of 100 (raise --max-pixels to accept it)", "too many pixels")]
    [InlineData("corrupt tar header at byte 1536; members listed before it are kept", "corrupt tar header at byte N")]
    [InlineData("unreadable: Permission denied", "unreadable")]
    public void Reasons_group_by_their_kind(string reason, string kind) => Assert.Equal(kind, FailureSummary.ReasonClass(reason));

    [Fact]
    public void Lines_count_each_kind_most_frequent_first_with_three_paths_and_the_csv()
    {
        using var tmp = new Fixtures.TempDir();
        var csv = tmp.File("errors.csv");
        using (var log = new CsvLog(csv, "path", "reason"))
        {
            log.Write("gone.jpg", "no such file or folder");
            foreach (var i in Enumerable.Range(1, 5)) log.Write($"t{i}.jpg", $"truncated JPEG: ends after {i * 100} bytes");
            log.Write("x, y.png", "empty file (0 bytes)");
            log.Complete();
        }
        Assert.Equal(
        [
            $"7 inputs failed (each one with its full reason in {csv}):",
            "  5 truncated JPEG: t1.jpg, t2.jpg, t3.jpg, ...",
            "  1 empty file: x, y.png",
            "  1 no such file or folder: gone.jpg",
        ], FailureSummary.Lines(csv));
    }

    [Fact]
    public void Non_image_files_of_a_folder_are_listed_apart_and_not_counted_as_failures()
    {
        using var tmp = new Fixtures.TempDir();
        var csv = tmp.File("errors.csv");
        using (var log = new CsvLog(csv, "path", "reason"))
        {
            log.Write("samples/SOURCES.md", FeatureOnnx.Sources.FolderSource.NotAnImage);
            log.Complete();
        }
        Assert.Equal([$"1 file in the input folders is not an image, listed in {csv}: samples/SOURCES.md"], FailureSummary.Lines(csv));

        using (var log = new CsvLog(csv, "path", "reason"))
        {
            log.Write("t.jpg", "truncated JPEG: ends early");
            foreach (var i in Enumerable.Range(1, 4)) log.Write($"n{i}.txt", FeatureOnnx.Sources.FolderSource.NotAnImage);
            log.Complete();
        }
        Assert.Equal(
        [
            $"1 input failed (each one with its full reason in {csv}):",
            "  1 truncated JPEG: t.jpg",
            $"4 files in the input folders are not an image, listed in {csv}: n1.txt, n2.txt, n3.txt, ...",
        ], FailureSummary.Lines(csv));
    }

    [Fact]
    public void No_failure_no_lines()
    {
        using var tmp = new Fixtures.TempDir();
        var csv = tmp.File("errors.csv");
        using (var log = new CsvLog(csv, "path", "reason")) log.Complete();
        Assert.Empty(FailureSummary.Lines(csv));
    }
}
