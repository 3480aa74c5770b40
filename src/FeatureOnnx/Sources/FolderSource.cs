namespace FeatureOnnx.Sources;

/// <summary>One input to extract: <see cref="Key"/> is what index.csv and errors.csv record.</summary>
/// <param name="Key">The path as the user will recognise it.</param>
/// <param name="Path">Where to read the bytes.</param>
public sealed record InputItem(string Key, string Path);

/// <summary>An input that was found but cannot be used, with the reason written to errors.csv.</summary>
/// <param name="Key">The path.</param>
/// <param name="Reason">Why it was refused.</param>
public sealed record InputProblem(string Key, string Reason);

/// <summary>What enumerating the inputs found.</summary>
public sealed record InputListing(IReadOnlyList<InputItem> Items, IReadOnlyList<InputProblem> Problems, int SkippedNonImageFiles);

/// <summary>
/// Expands the command line's inputs: files are taken as given (whatever their extension), folders are walked
/// recursively for image files, in ordinal path order so that row order is the same on every machine. Unreadable
/// folders, symlink loops, missing paths and duplicates are reported, never fatal.
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

        foreach (var input in inputs)
        {
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
