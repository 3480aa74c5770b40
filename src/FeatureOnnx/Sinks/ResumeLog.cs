using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FeatureOnnx.Sinks;

/// <summary>
/// What makes a run resumable after it is killed at any moment (SIGKILL included). <c>job.json</c> records what the
/// run was asked to do; <c>progress.log</c> gets one line <c>ROWS ERRORS</c> after each batch, written only once that
/// batch's rows, index lines and error lines have reached the operating system. On resume the outputs are cut back
/// to the last committed line, so no row is duplicated, none is missing, and the inputs already accounted for are
/// skipped. Both files are deleted when the run completes.
/// </summary>
internal sealed class ResumeLog : IDisposable
{
    /// <summary>Description of the job, compared on resume.</summary>
    public const string JobFileName = "job.json";

    /// <summary>The commit journal.</summary>
    public const string ProgressFileName = "progress.log";

    private readonly FileStream _progress;

    // Source-generated metadata: reflection-based JSON is off in a trimmed publish.
    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo<Dictionary<string, string>> JobJson =
        new JsonMetadata(new JsonSerializerOptions { WriteIndented = true }).DictionaryStringString;

    private ResumeLog(FileStream progress) => _progress = progress;

    /// <summary>Whether <paramref name="outDir"/> holds a run that did not complete.</summary>
    public static bool HasUnfinishedRun(string outDir) => File.Exists(Path.Combine(outDir, JobFileName));

    /// <summary>Starts a journal for a new run.</summary>
    public static ResumeLog Start(string outDir, IReadOnlyDictionary<string, string> job)
    {
        var tmp = Path.Combine(outDir, JobFileName + ".partial");
        File.WriteAllText(tmp, JsonSerializer.Serialize(new Dictionary<string, string>(job), JobJson) + "\n");
        File.Move(tmp, Path.Combine(outDir, JobFileName), overwrite: true);
        return new ResumeLog(new FileStream(Path.Combine(outDir, ProgressFileName), FileMode.Create, FileAccess.Write, FileShare.Read));
    }

    /// <summary>
    /// Reopens the journal of an unfinished run after checking it was asked to do the same job.
    /// Returns the last committed (rows, errors).
    /// </summary>
    /// <exception cref="ArgumentException">The earlier run was started with different settings; the message names them.</exception>
    public static ResumeLog Continue(string outDir, IReadOnlyDictionary<string, string> job, out long rows, out long errors)
    {
        var old = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(outDir, JobFileName)), JobJson) ?? [];
        var differences = job.Keys.Union(old.Keys)
            .Where(k => job.GetValueOrDefault(k) != old.GetValueOrDefault(k))
            .Select(k => $"{k}: was '{old.GetValueOrDefault(k)}', now '{job.GetValueOrDefault(k)}'").ToList();
        if (differences.Count > 0)
            throw new SettingException("ExtractionOptions.Resume", $"{outDir} holds a run started with other settings ({string.Join("; ", differences)}). Resume with the same settings, or set ExtractionOptions.Overwrite, or choose another folder.");
        (rows, errors) = (0, 0);
        var path = Path.Combine(outDir, ProgressFileName);
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path, Encoding.ASCII);
            var complete = text.LastIndexOf('\n');
            // Only lines ended by '\n' were committed; a torn last line is ignored.
            var lines = complete < 0 ? [] : text[..(complete + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (lines.Length > 0)
            {
                var parts = lines[^1].Split(' ');
                rows = long.Parse(parts[0], CultureInfo.InvariantCulture);
                errors = long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        stream.Position = stream.Length;
        var log = new ResumeLog(stream);
        log.Commit(rows, errors); // a clean line after any torn one
        return log;
    }

    /// <summary>Records that <paramref name="rows"/> rows and <paramref name="errors"/> error lines are on disk.</summary>
    public void Commit(long rows, long errors)
    {
        _progress.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"\n{rows} {errors}\n")));
        _progress.Flush();
    }

    /// <summary>Deletes the journal: the run completed.</summary>
    public static void Finish(string outDir)
    {
        File.Delete(Path.Combine(outDir, ProgressFileName));
        File.Delete(Path.Combine(outDir, JobFileName));
    }

    /// <inheritdoc />
    public void Dispose() => _progress.Dispose();
}
