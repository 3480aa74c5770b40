using System.Runtime.InteropServices;

namespace FeatureOnnx.Cuda;

/// <summary>A CUDA toolkit library that was loaded, and where from.</summary>
/// <param name="Handle">NativeLibrary handle (kept for the life of the process, as the runtime keeps its libraries).</param>
/// <param name="Path">The file loaded, or the bare name where the system loader found it.</param>
/// <param name="Origin">How it was found: "environment variable X", "beside the app", "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA toolkit", "pip wheel", "system loader".</param>
internal sealed record LoadedCudaLibrary(nint Handle, string Path, string Origin);

/// <summary>
/// Finds a library of NVIDIA's CUDA toolkit (libnvjpeg.so.13, libnvrtc.so.13) where users have one: a path named by
/// an environment variable, beside the app, on LD_LIBRARY_PATH, under CUDA_HOME or /usr/local/cuda*, in pip's
/// nvidia/*/lib folders (the torch wheels' copies), then wherever the system loader finds it. The first that loads wins.
/// </summary>
internal static class CudaLibrarySearch
{
    /// <summary>Loads <paramref name="fileName"/>; null with the places tried (and why each failed) in <paramref name="reason"/>.</summary>
    /// <param name="fileName">Soname, e.g. libnvjpeg.so.13.</param>
    /// <param name="overrideVariable">Environment variable that names the file to load instead of searching.</param>
    /// <param name="environment">Environment lookup (tests pass their own).</param>
    /// <param name="reason">Where it looked and why nothing loaded; empty on success.</param>
    public static LoadedCudaLibrary? TryLoad(string fileName, string overrideVariable, Func<string, string?>? environment, out string reason)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (environment(overrideVariable) is { Length: > 0 } named)
        {
            if (NativeLibrary.TryLoad(named, out var handle)) { reason = ""; return new LoadedCudaLibrary(handle, named, $"environment variable {overrideVariable}"); }
            reason = $"{overrideVariable}={named} does not load (missing, wrong architecture, or its own dependencies are missing)";
            return null;
        }
        var tried = new List<string>();
        foreach (var (folder, origin) in Folders(environment))
        {
            var path = System.IO.Path.Combine(folder, fileName);
            if (!File.Exists(path)) continue;
            if (NativeLibrary.TryLoad(path, out var handle)) { reason = ""; return new LoadedCudaLibrary(handle, path, origin); }
            tried.Add($"{path} exists but does not load");
        }
        if (NativeLibrary.TryLoad(fileName, out var system)) { reason = ""; return new LoadedCudaLibrary(system, fileName, "system loader"); }
        reason = $"{fileName} not found beside the app, on LD_LIBRARY_PATH, under CUDA_HOME or /usr/local/cuda*, in pip's nvidia/*/lib, or by the system loader" +
                 (tried.Count > 0 ? $" ({string.Join("; ", tried)})" : "") +
                 $"; install the CUDA 13 toolkit or the nvidia-*-cu13 wheels, or set {overrideVariable} to the file";
        return null;
    }

    /// <summary>The folders searched, in order, with how each was found.</summary>
    internal static IEnumerable<(string Folder, string Origin)> Folders(Func<string, string?> environment)
    {
        yield return (AppContext.BaseDirectory, "beside the app");
        foreach (var dir in Split(environment("LD_LIBRARY_PATH"))) yield return (dir, "LD_LIBRARY_PATH");
        foreach (var home in new[] { environment("CUDA_HOME"), environment("CUDA_PATH") })
            if (!string.IsNullOrEmpty(home))
                foreach (var sub in new[] { "lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib" })
                    yield return (System.IO.Path.Combine(home, sub), "CUDA_HOME");
        foreach (var root in Toolkits())
            foreach (var sub in new[] { "lib64", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib" })
                yield return (System.IO.Path.Combine(root, sub), "CUDA toolkit");
        foreach (var site in SitePackages(environment))
            foreach (var lib in SafeDirectories(System.IO.Path.Combine(site, "nvidia")).Order(StringComparer.Ordinal))
                yield return (System.IO.Path.Combine(lib, "lib"), "pip wheel");
    }

    // /usr/local/cuda first (the admin's choice), then versioned installs, newest first.
    private static IEnumerable<string> Toolkits() =>
        new[] { "/usr/local/cuda" }.Concat(SafeDirectories("/usr/local", "cuda-*").OrderByDescending(d => d, StringComparer.Ordinal));

    private static IEnumerable<string> SitePackages(Func<string, string?> environment)
    {
        var roots = new List<string>();
        foreach (var prefix in new[] { environment("VIRTUAL_ENV"), environment("CONDA_PREFIX") })
            if (!string.IsNullOrEmpty(prefix)) roots.Add(prefix);
        if (environment("HOME") is { Length: > 0 } home) roots.Add(System.IO.Path.Combine(home, ".local"));
        roots.AddRange(SafeDirectories("/opt").SelectMany(o => new[] { System.IO.Path.Combine(o, ".venv"), System.IO.Path.Combine(o, "venv"), o }));
        roots.AddRange(["/usr/local", "/usr"]);
        foreach (var dir in Split(environment("PYTHONPATH"))) yield return dir;
        foreach (var root in roots)
            foreach (var python in SafeDirectories(System.IO.Path.Combine(root, "lib"), "python3*").Order(StringComparer.Ordinal))
                foreach (var kind in new[] { "site-packages", "dist-packages" })
                    yield return System.IO.Path.Combine(python, kind);
    }

    private static IEnumerable<string> Split(string? list) =>
        (list ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static IEnumerable<string> SafeDirectories(string folder, string pattern = "*")
    {
        try { return Directory.Exists(folder) ? Directory.GetDirectories(folder, pattern) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }
}
