namespace FeatureOnnx.Sources;

/// <summary>One input to extract: <see cref="Key"/> is what index.csv and errors.csv record.</summary>
/// <param name="Key">The path as the user will recognise it (for tar members: SHARD.tar/member).</param>
/// <param name="Path">Where to read the bytes.</param>
/// <param name="Offset">Byte offset of the data inside <paramref name="Path"/> (tar members).</param>
/// <param name="Length">Bytes to read, or -1 for the whole file.</param>
public sealed record InputItem(string Key, string Path, long Offset = 0, long Length = -1)
{
    /// <summary>
    /// Reads the input's bytes (a whole file, or a tar member in place), only from a regular file and only when at
    /// most <paramref name="maxFileBytes"/> are to be read (<see cref="InputFile.Read"/>).
    /// </summary>
    /// <exception cref="InputFileException">Not a regular file, too large, or cut since it was listed; the message is the errors.csv reason.</exception>
    public byte[] ReadBytes(long maxFileBytes = InputFile.DefaultMaxFileBytes) => InputFile.Read(Path, Offset, Length, maxFileBytes);
}

/// <summary>An input that was found but cannot be used, with the reason written to errors.csv.</summary>
/// <param name="Key">The path.</param>
/// <param name="Reason">Why it was refused.</param>
public sealed record InputProblem(string Key, string Reason);

/// <summary>What enumerating the inputs found.</summary>
/// <param name="Items">The inputs to read, in order.</param>
/// <param name="Problems">Inputs refused while listing (errors.csv lines), files in folders that are not images included.</param>
/// <param name="SkippedNonImageFiles">Files in folders and tar members that are not images (by their extension); those in folders are also in <paramref name="Problems"/>.</param>
public sealed record InputListing(IReadOnlyList<InputItem> Items, IReadOnlyList<InputProblem> Problems, int SkippedNonImageFiles)
{
    /// <summary>The problems that are files in folders that are not images: listed, but not failures.</summary>
    public int ListedNonImageFiles => Problems.Count(p => p.Reason == FolderSource.NotAnImage);
}

/// <summary>
/// Expands the command line's inputs: files are taken as given (whatever their extension), folders are walked
/// recursively for image files, in ordinal path order so that row order is the same on every machine,
/// <c>@LIST.txt</c> names a file with one input per line (relative paths are relative to the list's folder; blank
/// lines and lines starting with # are ignored; it may be a pipe, e.g. <c>@/dev/stdin</c>), and <c>.tar</c> files are
/// WebDataset-style shards whose image members are read in place. Unreadable folders, symlink loops, missing paths,
/// duplicates, entries that are not regular files (FIFOs, sockets, devices), files above the size limit and files in
/// folders that are not images are reported (errors.csv), never fatal. Every path is looked at through
/// <see cref="InputFile"/>, which never opens what it will not read; keys of names that are not UTF-8 are
/// <see cref="FileNameBytes.Escaped"/>.
/// </summary>
public static class FolderSource
{
    /// <summary>The errors.csv reason of a file in a walked folder whose extension is not an image's.</summary>
    public const string NotAnImage = "not an image (by its extension)";

    /// <summary>File extensions taken from folders (case-insensitive). Files named explicitly are always tried.</summary>
    public static IReadOnlySet<string> ImageExtensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp", ".tga", ".pbm", ".pgm", ".ppm", ".pnm",
    };

    /// <summary>Enumerates <paramref name="inputs"/> (files, folders, @lists, tar shards); files and tar members above <paramref name="maxFileBytes"/> are refused from their size.</summary>
    /// <exception cref="ArgumentException"><paramref name="maxFileBytes"/> is not a valid limit (<see cref="InputFile.CheckLimit"/>).</exception>
    public static InputListing Enumerate(IEnumerable<string> inputs, long maxFileBytes = InputFile.DefaultMaxFileBytes)
    {
        InputFile.CheckLimit(maxFileBytes);
        var items = new List<InputItem>();
        var problems = new List<InputProblem>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal); // full path -> key first seen
        var skipped = 0;

        void Add(string path, InputFileStatus status)
        {
            var key = FileNameBytes.Escaped(path);
            if (InputFile.SizeRefusal(status.Size, maxFileBytes) is { } tooLarge)
            {
                problems.Add(new InputProblem(key, tooLarge));
                return;
            }
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
                if (depth > 4) { problems.Add(new InputProblem(FileNameBytes.Escaped(input), "list files nested more than 4 deep")); return; }
                List<string> lines;
                try
                {
                    lines = ReadList(list, maxFileBytes);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    problems.Add(new InputProblem(FileNameBytes.Escaped(input), $"unreadable list file: {e.Message}"));
                    return;
                }
                var baseDir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(list))!;
                foreach (var raw in lines)
                {
                    var line = raw.Trim();
                    if (line.Length == 0 || line.StartsWith('#')) continue;
                    Expand(System.IO.Path.IsPathRooted(line) || line.StartsWith('@') ? line : System.IO.Path.Combine(baseDir, line), depth + 1);
                }
                return;
            }
            var status = InputFile.Stat(input);
            switch (status.Kind)
            {
                case InputFileKind.Regular when TarShardSource.IsTar(input):
                    var full = System.IO.Path.GetFullPath(input);
                    var key = FileNameBytes.Escaped(input);
                    if (seen.TryGetValue(full, out var first))
                    {
                        problems.Add(new InputProblem(key, $"duplicate input: same tar shard as '{first}', read once"));
                        return;
                    }
                    seen[full] = key;
                    TarShardSource.Enumerate(input, key, items, problems, ref skipped, maxFileBytes);
                    return;
                case InputFileKind.Regular:
                    Add(input, status);
                    return;
                case InputFileKind.Directory:
                    var found = new List<(string Path, InputFileStatus Status)>();
                    Walk(input, status, found, problems, ref skipped);
                    found.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
                    foreach (var (path, fileStatus) in found) Add(path, fileStatus);
                    return;
                case InputFileKind.Missing:
                    problems.Add(new InputProblem(FileNameBytes.Escaped(input), "no such file or folder"));
                    return;
                default:
                    problems.Add(new InputProblem(FileNameBytes.Escaped(input), InputFile.Refusal(input, status)!));
                    return;
            }
        }

        foreach (var input in inputs) Expand(input, 0);
        return new InputListing(items, problems, skipped);
    }

    // A list's lines, names that are not UTF-8 kept; read as a stream so that a pipe works, up to the file size limit.
    private static List<string> ReadList(string path, long maxBytes)
    {
        var status = InputFile.Stat(path);
        if (status.Kind is not (InputFileKind.Regular or InputFileKind.Fifo))
            throw new IOException(status.Kind == InputFileKind.Missing ? "no such file" : InputFile.Refusal(path, status) ?? "not a file");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var bytes = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            if (bytes.Length + n > maxBytes) throw new IOException(InputFile.SizeRefusal(bytes.Length + n, maxBytes, "list file"));
            bytes.Write(buffer, 0, n);
        }
        var lines = new List<string>();
        var rest = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
        while (rest.Length > 0)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
            lines.Add(FileNameBytes.Decode(line));
            rest = end < 0 ? [] : rest[(end + 1)..];
        }
        return lines;
    }

    private static void Walk(string root, InputFileStatus rootStatus, List<(string, InputFileStatus)> found, List<InputProblem> problems, ref int skipped)
    {
        var visited = new Dictionary<string, string>(StringComparer.Ordinal); // file identity -> first path it was walked as
        var stack = new Stack<(string Path, InputFileStatus Status)>();
        stack.Push((root, rootStatus));
        while (stack.Count > 0)
        {
            var (dir, status) = stack.Pop();
            if (!visited.TryAdd(status.Identity, dir))
            {
                problems.Add(new InputProblem(FileNameBytes.Escaped(dir), $"symlink loop or repeated folder (same folder as '{FileNameBytes.Escaped(visited[status.Identity])}'), not walked again"));
                continue;
            }
            List<string> names;
            try
            {
                names = InputFile.List(dir);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                problems.Add(new InputProblem(FileNameBytes.Escaped(dir), $"unreadable folder: {e.Message}"));
                continue;
            }
            names.Sort(StringComparer.Ordinal);
            foreach (var name in names)
            {
                var entry = System.IO.Path.Combine(dir, name);
                var entryStatus = InputFile.Stat(entry);
                switch (entryStatus.Kind)
                {
                    case InputFileKind.Directory:
                        stack.Push((entry, entryStatus));
                        break;
                    case InputFileKind.Regular when ImageExtensions.Contains(System.IO.Path.GetExtension(name)):
                        found.Add((entry, entryStatus));
                        break;
                    case InputFileKind.Regular:
                        problems.Add(new InputProblem(FileNameBytes.Escaped(entry), NotAnImage));
                        skipped++;
                        break;
                    default:
                        problems.Add(new InputProblem(FileNameBytes.Escaped(entry), InputFile.Refusal(entry, entryStatus)!));
                        break;
                }
            }
        }
    }
}
