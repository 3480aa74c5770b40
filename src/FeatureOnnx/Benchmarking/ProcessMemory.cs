using System.Diagnostics;
using System.Globalization;

namespace FeatureOnnx.Benchmarking;

/// <summary>
/// This process's resident memory from <c>/proc/self/status</c> (VmRSS, and VmHWM, its peak), with .NET's
/// <see cref="Process"/> figures where /proc is absent. On Linux the peak can be reset (<c>/proc/self/clear_refs</c>,
/// value 5, Linux 4.0+), which turns a process-wide high-water mark into a per-configuration one.
/// </summary>
internal static class ProcessMemory
{
    private const string Status = "/proc/self/status";

    /// <summary>Resident set size now, in bytes.</summary>
    public static long ResidentBytes() => ReadKilobytes("VmRSS:") is { } kb ? kb * 1024 : Environment.WorkingSet;

    /// <summary>Peak resident set size since the process started or the last <see cref="TryResetPeak"/>, in bytes.</summary>
    public static long PeakBytes()
    {
        if (ReadKilobytes("VmHWM:") is { } kb) return kb * 1024;
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    /// <summary>Resets the peak to the current resident size; false where the kernel does not allow it.</summary>
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    private static long? ReadKilobytes(string field)
    {
        try
        {
            foreach (var line in File.ReadLines(Status))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }
}
