using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Sinks;

/// <summary>
/// The output folder of both extraction paths: it is written only when new, empty or holding a run (unless overwriting
/// was asked for), a new run leaves nothing stale, and a killed run resumes from its last commit.
/// </summary>
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

    private static readonly Dictionary<string, string> Job = new() { ["model"] = "m", ["outputs"] = "pooled,map" };

    [Fact]
    public void A_new_run_deletes_every_file_of_the_earlier_one_and_nothing_else()
    {
        using var tmp = new Fixtures.TempDir();
        string[] stale = ["old.npy", "other.npy.partial", "index.csv", "errors.csv.partial", "errors.csv", "run.json", ResumeLog.ProgressFileName];
        foreach (var f in stale) File.WriteAllText(tmp.File(f), "stale");
        File.WriteAllText(tmp.File("notes.txt"), "mine");
        using (var folder = FeatureOutputFolder.Open(tmp.Path, Job, ["pooled", "map"], resume: false))
        {
            folder.Append("pooled", [2], [1, 2, 3, 4]);
            folder.Append("map", [1, 2], [5, 6, 7, 8]);
            folder.Index(["a.jpg", "b.jpg"]);
            folder.WriteError("c.jpg", "broken");
            folder.Close(completed: true);
            Assert.False(folder.Resumed);
            Assert.Equal(new long[] { 2, 1, 2 }, folder.Layers["map"]);
        }
        Assert.Equal(["errors.csv", "index.csv", "map.npy", "notes.txt", "pooled.npy"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("row,path\n0,a.jpg\n1,b.jpg\n", File.ReadAllText(tmp.File("index.csv")));
        Assert.Equal("path,reason\nc.jpg,broken\n", File.ReadAllText(tmp.File("errors.csv")));
        var (shape, data) = Fixtures.ReadFloatNpy(tmp.File("map.npy"));
        Assert.Equal(new long[] { 2, 1, 2 }, shape);
        Assert.Equal([5f, 6, 7, 8], data);
    }

    [Fact]
    public void A_killed_run_resumes_from_its_last_commit_cutting_a_torn_index_line()
    {
        using var tmp = new Fixtures.TempDir();
        var folder = FeatureOutputFolder.Open(tmp.Path, Job, ["pooled"], resume: true);
        folder.Append("pooled", [2], [1, 2, 3, 4]);
        folder.Index(["a.jpg", "b.jpg"]);
        folder.WriteError("bad.jpg", "broken");
        folder.Commit();
        folder.Append("pooled", [2], [9, 9]);      // written but never committed...
        folder.Index(["c.jpg"]);
        folder.Commit();                           // (flushes c.jpg's row and line)
        folder.Dispose();
        // ...and then the last commit line is torn and the index gets half a line, as when SIGKILL lands mid-write.
        var log = tmp.File(ResumeLog.ProgressFileName);
        File.WriteAllText(log, File.ReadAllText(log)[..^"\n3 1\n".Length] + "\n3 ");
        File.AppendAllText(tmp.File("index.csv.partial"), "3,d.j");

        Assert.False(FeatureOutputFolder.Check(tmp.Path, overwrite: false, resume: true));
        using (var resumed = FeatureOutputFolder.Open(tmp.Path, Job, ["pooled"], resume: true))
        {
            Assert.True(resumed.Resumed);
            Assert.Equal((2L, 1L, 2L), (resumed.CommittedRows, resumed.CommittedErrors, resumed.Rows));
            Assert.Equal(["a.jpg", "b.jpg", "bad.jpg"], resumed.Accounted.Order(StringComparer.Ordinal));
            resumed.Append("pooled", [2], [5, 6]);
            resumed.Index(["c.jpg"]);
            resumed.Close(completed: true);
        }
        Assert.Equal("row,path\n0,a.jpg\n1,b.jpg\n2,c.jpg\n", File.ReadAllText(tmp.File("index.csv")));
        Assert.Equal([1f, 2, 3, 4, 5, 6], Fixtures.ReadFloatNpy(tmp.File("pooled.npy")).Data);
        Assert.False(File.Exists(tmp.File(ResumeLog.JobFileName)));
        Assert.Empty(Directory.EnumerateFiles(tmp.Path, "*.partial"));
    }

    [Fact]
    public void Rows_of_another_shape_are_refused_naming_the_output()
    {
        using var tmp = new Fixtures.TempDir();
        using var folder = FeatureOutputFolder.Open(tmp.Path, Job, ["pooled", "map"], resume: false);
        folder.Append("pooled", [4], [1, 2, 3, 4]);
        var e = Assert.Throws<InvalidDataException>(() => folder.Append("pooled", [2, 2], [1, 2, 3, 4]));
        Assert.Contains("output 'pooled'", e.Message);
        Assert.Contains("[4]", e.Message);
        Assert.Contains("[2,2]", e.Message);
        // An output left out of a batch is caught at the commit, before the journal could record it.
        folder.Index(["a.jpg"]);
        folder.Append("map", [1], [7]);
        folder.Append("map", [1], [8]);
        var missing = Assert.Throws<InvalidOperationException>(folder.Commit);
        Assert.Contains("output 'map' holds 2 rows but index.csv 1", missing.Message);
    }

    [Fact]
    public void Resume_of_a_completed_run_reports_it_and_a_plain_rerun_is_refused()
    {
        using var tmp = new Fixtures.TempDir();
        using (var folder = FeatureOutputFolder.Open(tmp.Path, Job, ["pooled"], resume: false))
        {
            Assert.Throws<IOException>(() => FeatureOutputFolder.Check(tmp.Path, overwrite: false, resume: false)); // unfinished: job.json
            folder.Close(completed: true, [KeyValuePair.Create("pooled", new long[] { 3 })]);
            folder.WriteSummary(new MergeResult { Model = "m", Layers = folder.Layers, Sources = [] });
        }
        Assert.Equal(new long[] { 0, 3 }, Fixtures.ReadFloatNpy(tmp.File("pooled.npy")).Shape); // no row: a [0, 3] file all the same
        Assert.True(FeatureOutputFolder.Check(tmp.Path, overwrite: false, resume: true));
        Assert.Equal("m", FeatureOutputFolder.ReadSummary<MergeResult>(tmp.Path)!.Model);
        var e = Assert.Throws<IOException>(() => FeatureOutputFolder.Check(tmp.Path, overwrite: false, resume: false));
        Assert.Contains("already holds a run", e.Message);
        Assert.False(FeatureOutputFolder.Check(tmp.Path, overwrite: true, resume: false));
    }
}
