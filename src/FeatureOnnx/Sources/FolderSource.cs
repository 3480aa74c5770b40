namespace FeatureOnnx.Sources;

/// <summary>One input to extract: <see cref="Key"/> is what index.csv and errors.csv record.</summary>
/// <param name="Key">The path as the user will recognise it (for tar members: SHARD.tar/member).</param>
/// <param name="Path">Where to read the bytes.</param>
/// <param name="Offset">Byte offset of the data inside <paramref name="Path"/> (tar members).</param>
/// <param name="Length">Bytes to read, or -1 for the whole file.</param>
public sealed record InputItem(string Key, string Path, long Offset = 0, long Length = -1)
{
    /// <summary>Reads the input's bytes (a whole file, or a tar member in place).</summary>
    public byte[] ReadBytes()
    {
        if (Length < 0) return File.ReadAllBytes(Path);
        using var handle = File.OpenHandle(Path);
        var data = new byte[Length];
        var read = 0;
        while (read < data.Length)
        {
            var n = RandomAccess.Read(handle, data.AsSpan(read), Offset + read);
            if (n == 0) throw new EndOfStreamException($"{Path} ended inside member {Key}");
            read += n;
        }
        return data;
    }
}

/// <summary>An input that was found but cannot be used, with the reason written to errors.csv.</summary>
/// <param name="Key">The path.</param>
/// <param name="Reason">Why it was refused.</param>
public sealed record InputProblem(string Key, string Reason);

/// <summary>What enumerating the inputs found.</summary>
public sealed record InputListing(IReadOnlyList<InputItem> Items, IReadOnlyList<InputProblem> Problems, int SkippedNonImageFiles);

/// <summary>
/// Expands the command line's inputs: files are taken as given (whatever their extension), folders are walked
/// recursively for image files, in ordinal path order so that row order is the same on every machine,
/// <c>@LIST.txt</c> names a file with one input per line (relative paths are relative to the list's folder; blank
/// lines and lines starting with # are ignored), and <c>.tar</c> files are WebDataset-style shards whose image members
/// are read in place. Unreadable folders, symlink loops, missing paths and duplicates are reported, never fatal.
/// </summary>
public static class FolderSource
{
    /// <summary>File extensions taken from folders (case-insensitive). Files named explicitly are always tried.</summary>
    public static IReadOnlySet<string> ImageExtensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".tga", ".pbm", ".pgm", ".ppm", ".pnm",
    };

    /// <summary>Enumerates <paramref name="inputs"/> (files and folders).</summary>
    public static InputListing Enumerate(IEnumerable<string> inputs)
    {
        var items = new List<InputItem>();
        var problems = new List<InputProblem>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal); // full path -> key first seen
        var skipped = 0;

        void Add(string key, string path)
        {
            var full = System.IO.Path.GetFullPath(path);
            if (seen.TryGetValue(full, out var first))
            {
                problems.Add(new InputProblem(key, $"duplicate input: same file as '{first}', extracted once"));
                return;
            }
            seen[full] = key;
            items.Add(new InputItem(key, full));
        }

        void Expand(string input, int depth)
        {
            if (input.StartsWith('@'))
            {
                var list = input[1..];
                string[] lines;
                try
                {
                    lines = File.ReadAllLines(list);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    problems.Add(new InputProblem(input, $"unreadable list file: {e.Message}"));
                    return;
                }
                if (depth > 4) { problems.Add(new InputProblem(input, "list files nested more than 4 deep")); return; }
                var baseDir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(list))!;
                foreach (var raw in lines)
                {
                    var line = raw.Trim();
                    if (line.Length == 0 || line.StartsWith('#')) continue;
                    Expand(System.IO.Path.IsPathRooted(line) || line.StartsWith('@') ? line : System.IO.Path.Combine(baseDir, line), depth + 1);
                }
                return;
            }
            if (File.Exists(input) && TarShardSource.IsTar(input))
            {
                var full = System.IO.Path.GetFullPath(input);
                if (seen.TryGetValue(full, out var first))
                {
                    problems.Add(new InputProblem(input, $"duplicate input: same tar shard as '{first}', read once"));
                    return;
                }
                seen[full] = input;
                TarShardSource.Enumerate(input, input, items, problems, ref skipped);
                return;
            }
            if (File.Exists(input))
            {
                Add(input, input);
            }
            else if (Directory.Exists(input))
            {
                var found = new List<string>();
                Walk(input, found, problems, ref skipped);
                found.Sort(StringComparer.Ordinal);
                foreach (var f in found) Add(f, f);
            }
            else
            {
                problems.Add(new InputProblem(input, "no such file or folder"));
            }
        }

        foreach (var input in inputs) Expand(input, 0);
        return new InputListing(items, problems, skipped);
    }

    private static void Walk(string root, List<string> found, List<InputProblem> problems, ref int skipped)
    {
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var dir = stack.Pop();
            var real = RealPath(dir);
            if (!visited.Add(real))
            {
                problems.Add(new InputProblem(dir, $"symlink loop or repeated folder (resolves to '{real}'), not walked again"));
                continue;
            }
            string[] entries;
            try
            {
                entries = Directory.GetFileSystemEntries(dir);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                problems.Add(new InputProblem(dir, $"unreadable folder: {e.Message}"));
                continue;
            }
            foreach (var entry in entries)
            {
                if (Directory.Exists(entry)) { stack.Push(entry); continue; }
                if (!File.Exists(entry))
                {
                    problems.Add(new InputProblem(entry, "broken symlink or vanished file"));
                    continue;
                }
                if (ImageExtensions.Contains(System.IO.Path.GetExtension(entry))) found.Add(entry);
                else skipped++;
            }
        }
    }

    private static string RealPath(string dir)
    {
        try
        {
            var info = new DirectoryInfo(dir);
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            var resolved = target?.FullName ?? info.FullName;
            // Resolve links in parent folders too, so that two routes to one folder compare equal.
            var parent = System.IO.Path.GetDirectoryName(resolved);
            return parent is null || parent == resolved ? resolved : System.IO.Path.Combine(RealPath(parent), System.IO.Path.GetFileName(resolved));
        }
        catch (IOException)
        {
            return System.IO.Path.GetFullPath(dir);
        }
    }
}
