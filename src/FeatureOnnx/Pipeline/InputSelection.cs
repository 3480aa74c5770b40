using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>
/// The inputs a run is to do, for both extraction paths: the listing of the command line's inputs
/// (<see cref="FolderSource"/>), refused when it holds no image, cut to this run's <see cref="Shard"/>, and on resume
/// cut to what the output folder has not accounted for yet. It lives in Pipeline, not Sources, because sharding and
/// resume are the pipeline's decisions (ARCHITECTURE.md); Sources only lists.
/// </summary>
internal sealed class InputSelection
{
    private InputSelection(IReadOnlyList<InputItem> items, IReadOnlyList<InputProblem> problems, int skipped, int listedNonImages, Shard shard)
    {
        (Items, Problems, SkippedNonImageFiles, ListedNonImageFiles, Shard) = (items, problems, skipped, listedNonImages, shard);
    }

    /// <summary>The inputs to read, in order.</summary>
    public IReadOnlyList<InputItem> Items { get; }

    /// <summary>Inputs refused while listing (errors.csv lines), files in folders that are not images included.</summary>
    public IReadOnlyList<InputProblem> Problems { get; }

    /// <summary>Files in folders and tar members that are not images (by extension), in all shards: tar members are counted, not keyed.</summary>
    public int SkippedNonImageFiles { get; }

    /// <summary>
    /// Files of walked folders that are not images, in this shard, before resume took any out: they are errors.csv lines
    /// but no failures, and a resumed run has them among its committed error lines.
    /// </summary>
    public int ListedNonImageFiles { get; }

    /// <summary>The shard selected.</summary>
    public Shard Shard { get; }

    /// <summary>
    /// Lists <paramref name="inputs"/> (files, folders, @lists, tar shards) on a worker thread, so that a hung file
    /// system does not hold up a stop, refuses a listing without any image and selects <paramref name="shard"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The inputs hold no image at all.</exception>
    /// <exception cref="OperationCanceledException">Stopped while listing.</exception>
    public static async Task<InputSelection> ListAsync(IReadOnlyList<string> inputs, long maxFileBytes, Shard shard, CancellationToken cancellation)
    {
        var listing = await Task.Run(() => FolderSource.Enumerate(inputs, maxFileBytes), CancellationToken.None).WaitAsync(cancellation);
        RefuseEmpty(listing, inputs); // before sharding: a shard may get none of many inputs
        return Select(listing, shard);
    }

    /// <summary>The part of <paramref name="listing"/> that belongs to <paramref name="shard"/> (every input is in exactly one shard of N).</summary>
    public static InputSelection Select(InputListing listing, Shard shard)
    {
        var items = shard.Count > 1 ? listing.Items.Where(i => shard.Contains(i.Key)).ToList() : listing.Items;
        var problems = shard.Count > 1 ? listing.Problems.Where(p => shard.Contains(p.Key)).ToList() : listing.Problems;
        return new InputSelection(items, problems, listing.SkippedNonImageFiles, problems.Count(p => p.Reason == FolderSource.NotAnImage), shard);
    }

    /// <summary>This selection without the inputs an earlier run already accounted for (<paramref name="accounted"/> keys).</summary>
    public InputSelection Without(IReadOnlySet<string> accounted) => accounted.Count == 0 ? this : new InputSelection(
        Items.Where(i => !accounted.Contains(i.Key)).ToList(),
        Problems.Where(p => !accounted.Contains(p.Key)).ToList(),
        SkippedNonImageFiles, ListedNonImageFiles, Shard);

    /// <summary>The inputs as a resumed run must find them again: absolute paths (lists as <c>@PATH</c>), one per line.</summary>
    public static string Describe(IReadOnlyList<string> inputs) =>
        string.Join("\n", inputs.Select(i => i.StartsWith('@') ? "@" + Path.GetFullPath(i[1..]) : Path.GetFullPath(i)));

    /// <summary>
    /// Nothing found at all (an empty folder) is a mistake to report, not a completed run of 0 rows, and it is found
    /// before the output folder is touched.
    /// </summary>
    /// <exception cref="FileNotFoundException">The inputs hold no image and no input that could be listed as failed.</exception>
    internal static void RefuseEmpty(InputListing listing, IReadOnlyList<string> inputs)
    {
        // Files of walked folders that are not images are listed as problems too, but they are not inputs that were asked for.
        if (listing.Items.Count > 0 || listing.Problems.Any(p => p.Reason != FolderSource.NotAnImage)) return;
        throw new FileNotFoundException($"no image found in {string.Join(", ", inputs.Take(5))}{(inputs.Count > 5 ? ", ..." : "")}" +
                                        (listing.SkippedNonImageFiles > 0 ? $" ({listing.SkippedNonImageFiles} file(s) without an image extension skipped)." : "."));
    }

    /// <summary>Reads one input's bytes; on failure returns null and the errors.csv reason.</summary>
    public static byte[]? Read(InputItem item, long maxFileBytes, Func<InputItem, long, byte[]> read, out string? reason)
    {
        try
        {
            reason = null;
            return read(item, maxFileBytes);
        }
        catch (Exception e)
        {
            reason = ReadFailure(e);
            return null;
        }
    }

    /// <summary>The errors.csv reason for an input that could not be read (<see cref="InputFile.Read"/>).</summary>
    internal static string ReadFailure(Exception e) => e switch
    {
        InputFileException => e.Message,
        FileNotFoundException or DirectoryNotFoundException => "file vanished before it could be read",
        OutOfMemoryException => "out of memory reading it",
        IOException or UnauthorizedAccessException => $"unreadable: {e.Message}",
        _ => $"read failure ({e.GetType().Name}): {e.Message}",
    };
}
