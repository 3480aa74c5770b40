using System.Globalization;
using System.Text;

namespace FeatureOnnx.Pipeline;

/// <summary>
/// A deterministic 1/N of the inputs: input <c>k</c> belongs to shard <c>FNV-1a-64(UTF-8 of k) mod N</c>, so the split is the same
/// on every machine and every run, whatever order the inputs were enumerated in.
/// </summary>
/// <param name="Index">This shard, 0-based.</param>
/// <param name="Count">Number of shards.</param>
public sealed record Shard(int Index, int Count)
{
    /// <summary>Everything (shard 0 of 1).</summary>
    public static Shard All { get; } = new(0, 1);

    /// <summary>Whether <paramref name="key"/> belongs to this shard.</summary>
    public bool Contains(string key) =>
        Count == 1 || (int)(Fnv1a64(key) % (ulong)Count) == Index;

    /// <summary>64-bit FNV-1a over the UTF-8 bytes: tiny, stable across platforms and .NET versions.</summary>
    public static ulong Fnv1a64(string key)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(key))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    /// <summary>
    /// Parses <c>I/N</c> (0-based I), or <c>auto</c>: a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS)
    /// or a Slurm job array (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT).
    /// </summary>
    /// <exception cref="FormatException">Not I/N, not a valid shard, or auto outside a job array.</exception>
    public static Shard Parse(string text, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (text == "auto")
        {
            if (environment("JOB_COMPLETION_INDEX") is { } k8sIndex)
                return Make(k8sIndex, environment("JOB_COMPLETIONS") ?? throw new FormatException("auto: JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not; set completions in the Job spec."), "JOB_COMPLETION_INDEX/JOB_COMPLETIONS");
            if (environment("SLURM_ARRAY_TASK_ID") is { } slurmId)
            {
                var min = environment("SLURM_ARRAY_TASK_MIN") ?? "0";
                var count = environment("SLURM_ARRAY_TASK_COUNT") ?? throw new FormatException("auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not.");
                return Make((int.Parse(slurmId, CultureInfo.InvariantCulture) - int.Parse(min, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture), count, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
            }
            throw new FormatException("auto: neither a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) nor a Slurm array (SLURM_ARRAY_TASK_ID) is set; give the shard as I/N.");
        }
        var parts = text.Split('/');
        if (parts.Length != 2) throw new FormatException($"'{text}': use I/N (0-based I, e.g. 0/4) or auto.");
        return Make(parts[0], parts[1], "I/N");
    }

    private static Shard Make(string index, string count, string source)
    {
        if (!int.TryParse(index, CultureInfo.InvariantCulture, out var i) || !int.TryParse(count, CultureInfo.InvariantCulture, out var n) || n < 1 || i < 0 || i >= n)
            throw new FormatException($"{source}: shard {index} of {count} is not valid (need 0 <= I < N).");
        return new Shard(i, n);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Index}/{Count}";
}
