using System.Security.Cryptography;
using System.Text;

namespace FeatureOnnx.Models;

/// <summary>
/// Converted graphs (fp16) kept on disk by content hash, so a session at another precision is converted once:
/// the key is the SHA-256 of the prepared float32 graph (outputs, pruning and input form included) and of the
/// conversion's options. Files go to <c>.featureonnx-cache/</c> next to the model's manifest when that folder is
/// writable, else to <c>$XDG_CACHE_HOME/featureonnx</c> (default <c>~/.cache/featureonnx</c>).
/// </summary>
public sealed class ConversionCache
{
    /// <summary>Folder name created next to a model.</summary>
    public const string FolderName = ".featureonnx-cache";

    private readonly string? _directory;
    private readonly string? _userDirectory;

    /// <summary>Creates a cache.</summary>
    /// <param name="directory">Where to keep every file; default null: next to each model, else the user cache folder.</param>
    /// <param name="userDirectory">The folder used when the model's is not writable; default null: <see cref="UserDirectory"/>.</param>
    public ConversionCache(string? directory = null, string? userDirectory = null)
    {
        _directory = directory;
        _userDirectory = userDirectory;
    }

    /// <summary>The user cache folder: <c>$XDG_CACHE_HOME/featureonnx</c>, or <c>~/.cache/featureonnx</c>.</summary>
    public static string UserDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
        return Path.Combine(root, "featureonnx");
    }

    /// <summary>The converted graph for <paramref name="source"/>, from the cache or made by <paramref name="convert"/> and stored.</summary>
    /// <param name="manifest">The model (names the file; its folder is the first choice of location).</param>
    /// <param name="source">The prepared float32 graph.</param>
    /// <param name="variant">The conversion and its options, as text (part of the key).</param>
    /// <param name="convert">Makes the converted graph.</param>
    /// <param name="path">The cache file used; null when no folder was writable (then the graph is converted every time).</param>
    public byte[] GetOrConvert(ModelManifest manifest, byte[] source, string variant, Func<byte[]> convert, out string? path)
    {
        var hash = Convert.ToHexString(SHA256.HashData([.. SHA256.HashData(source), .. Encoding.UTF8.GetBytes(variant)]))[..16].ToLowerInvariant();
        var fileName = $"{Safe(manifest.Name)}.{hash}.onnx";
        var folders = _directory is not null ? [_directory] : new[] { Path.Combine(manifest.BaseDirectory, FolderName), _userDirectory ?? UserDirectory() };
        foreach (var folder in folders)
        {
            var candidate = Path.Combine(folder, fileName);
            if (File.Exists(candidate))
            {
                path = candidate;
                return File.ReadAllBytes(candidate);
            }
        }
        var bytes = convert();
        foreach (var folder in folders)
        {
            try
            {
                Directory.CreateDirectory(folder);
                var candidate = Path.Combine(folder, fileName);
                var tmp = candidate + $".{Environment.ProcessId}.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Move(tmp, candidate, overwrite: true);
                path = candidate;
                return bytes;
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                // read-only model folder (a package cache, a container image): try the next one
            }
        }
        path = null;
        return bytes;
    }

    /// <summary>
    /// A graph prepared earlier under the same <paramref name="key"/> (<see cref="PreparedModel.Build"/>'s inputs: the
    /// model files, the manifest, the outputs, the options and this library's build), with the facts stored beside it;
    /// false when there is none or it cannot be read. Reading 64 MB back costs tens of milliseconds where preparing
    /// the built-in ResNet18 again (two ONNX files parsed, composed, pruned, serialised) costs about 0.85 s.
    /// </summary>
    internal bool TryGetPrepared(ModelManifest manifest, string key, out byte[] bytes, out PreparedFacts facts)
    {
        var fileName = PreparedFileName(manifest, key);
        foreach (var folder in Folders(manifest))
        {
            var onnx = Path.Combine(folder, fileName);
            var json = onnx + ".json";
            try
            {
                if (!File.Exists(onnx) || !File.Exists(json)) continue;
                facts = System.Text.Json.JsonSerializer.Deserialize(File.ReadAllText(json), JsonMetadata.Default.PreparedFacts)!;
                bytes = File.ReadAllBytes(onnx);
                if (facts is not null && facts.Length == bytes.Length)
                {
                    Touch(onnx);
                    return true;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException) { }
        }
        (bytes, facts) = ([], null!);
        return false;
    }

    /// <summary>Keeps a prepared graph and its facts for <see cref="TryGetPrepared"/>; silently skipped where no folder
    /// can be written (a cache only saves time).</summary>
    internal void PutPrepared(ModelManifest manifest, string key, byte[] bytes, PreparedFacts facts)
    {
        var fileName = PreparedFileName(manifest, key);
        foreach (var folder in Folders(manifest))
        {
            try
            {
                Directory.CreateDirectory(folder);
                var onnx = Path.Combine(folder, fileName);
                var tmp = $"{onnx}.{Environment.ProcessId}.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Move(tmp, onnx, overwrite: true);
                // The facts last: a reader takes the graph only once they exist and name its length.
                File.WriteAllText(tmp, System.Text.Json.JsonSerializer.Serialize(facts with { Length = bytes.Length }, JsonMetadata.Default.PreparedFacts));
                File.Move(tmp, onnx + ".json", overwrite: true);
                KeepNewest(folder, "*.prepared.onnx");
                return;
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException) { }
        }
    }

    /// <summary>Entries of one kind a cache folder keeps (the most recently used); older ones are deleted when a new one
    /// is written, so that trying many output sets or models does not fill the disk (about 64 MB an entry for ResNet18).</summary>
    internal const int EntriesKept = 8;

    /// <summary>Marks <paramref name="path"/> as just used (its modification time orders eviction).</summary>
    internal static void Touch(string path)
    {
        try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Deletes all but the <paramref name="keep"/> most recently used files matching <paramref name="pattern"/>
    /// (with their <c>.json</c> companions); a cache, so failures are ignored.</summary>
    internal static void KeepNewest(string folder, string pattern, int keep = EntriesKept)
    {
        try
        {
            foreach (var old in new DirectoryInfo(folder).GetFiles(pattern).OrderByDescending(f => f.LastWriteTimeUtc).Skip(keep))
            {
                old.Delete();
                File.Delete(old.FullName + ".json");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private IEnumerable<string> Folders(ModelManifest manifest) =>
        _directory is not null ? [_directory] : [Path.Combine(manifest.BaseDirectory, FolderName), _userDirectory ?? UserDirectory()];

    private static string PreparedFileName(ModelManifest manifest, string key) =>
        $"{Safe(manifest.Name)}.{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16].ToLowerInvariant()}.prepared.onnx";

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_'));
}
