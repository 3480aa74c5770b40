namespace FeatureOnnx.Pipeline;

/// <summary>
/// Where a run may write: a new or empty folder, or one holding an earlier run (run.json, or the job.json and
/// progress.log of an unfinished one), whose files the run replaces or resumes. Any other folder holds someone's own
/// files, which a run would overwrite (index.csv, errors.csv) or delete (*.npy).
/// </summary>
public static class OutputFolder
{
    /// <summary>The summary a finished (completed, interrupted or failed) run writes last.</summary>
    public const string SummaryFileName = "run.json";

    /// <summary>Whether <paramref name="folder"/> holds a run, finished or not.</summary>
    public static bool HoldsRun(string folder) =>
        File.Exists(Path.Combine(folder, SummaryFileName)) || ResumeLog.HasUnfinishedRun(folder) || File.Exists(Path.Combine(folder, ResumeLog.ProgressFileName));

    /// <summary>Refuses a folder that exists, is not empty and holds no run.</summary>
    /// <exception cref="OutputFolderException">The folder holds other files; the message names a few.</exception>
    public static void RefuseForeign(string folder)
    {
        if (!Directory.Exists(folder) || HoldsRun(folder)) return;
        var entries = Directory.EnumerateFileSystemEntries(folder).Take(4).Select(Path.GetFileName).ToList();
        if (entries.Count == 0) return;
        var named = string.Join(", ", entries.Take(3)) + (entries.Count > 3 ? ", ..." : "");
        throw new OutputFolderException(folder,
            $"{folder} is not empty ({named}) and holds no earlier run (no {SummaryFileName}): a run there would replace index.csv, errors.csv and " +
            $"{SummaryFileName} and delete every *.npy. Choose a new or empty folder.");
    }
}

/// <summary>The output folder holds files that are not a run's; overwriting them must be asked for explicitly.</summary>
public sealed class OutputFolderException(string folder, string message) : IOException(message)
{
    /// <summary>The folder refused.</summary>
    public string Folder { get; } = folder;
}
