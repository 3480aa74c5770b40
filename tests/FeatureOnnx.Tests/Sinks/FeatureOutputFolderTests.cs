using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Sinks;

/// <summary>A run writes only into a new or empty folder or one holding a run, unless overwriting was asked for.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class FeatureOutputFolderTests
{
    [Fact]
    public async Task Both_pipelines_refuse_a_folder_of_other_files_before_touching_it()
    {
        using var tmp = new Fixtures.TempDir();
        var photo = Fixtures.PathOf("photos", "skimage_coffee.png");
        File.WriteAllText(tmp.File("index.csv"), "mine\n");
        File.WriteAllText(tmp.File("features.npy"), "mine too\n");

        var e = await Assert.ThrowsAsync<OutputFolderException>(() =>
            new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [photo], OutputDirectory = tmp.Path }));
        Assert.Equal(tmp.Path, e.Folder);
        Assert.DoesNotContain("--", e.Message); // the library names no CLI flag
        await Assert.ThrowsAsync<OutputFolderException>(() =>
            new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions { Inputs = [photo], OutputDirectory = tmp.Path, Model = photo }));
        Assert.Equal(["features.npy", "index.csv"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order());
        Assert.Equal("mine\n", File.ReadAllText(tmp.File("index.csv")));
    }

    [Fact]
    public void A_folder_holding_a_run_finished_or_not_or_nothing_is_accepted()
    {
        using var tmp = new Fixtures.TempDir();
        FeatureOutputFolder.RefuseForeign(tmp.File("new"));                  // does not exist yet
        FeatureOutputFolder.RefuseForeign(Directory.CreateDirectory(tmp.File("empty")).FullName);
        foreach (var marker in new[] { FeatureOutputFolder.SummaryFileName, ResumeLog.JobFileName, ResumeLog.ProgressFileName })
        {
            var dir = Directory.CreateDirectory(tmp.File("run-" + marker)).FullName;
            File.WriteAllText(Path.Combine(dir, "index.csv"), "row,path\n");
            File.WriteAllText(Path.Combine(dir, marker), "");
            Assert.True(FeatureOutputFolder.HoldsRun(dir));
            FeatureOutputFolder.RefuseForeign(dir);
        }
        var foreign = Directory.CreateDirectory(tmp.File("foreign")).FullName;
        Directory.CreateDirectory(Path.Combine(foreign, "sub"));
        Assert.False(FeatureOutputFolder.HoldsRun(foreign));
        Assert.Throws<OutputFolderException>(() => FeatureOutputFolder.RefuseForeign(foreign));
    }
}
