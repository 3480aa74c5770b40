using FeatureOnnx.Cuda;

namespace FeatureOnnx.Preprocessing;

/// <summary>What the GPU decoder finds here (<c>featureonnx providers</c>).</summary>
public sealed record GpuDecoderReport
{
    /// <summary>Where nvJPEG was loaded from and how it was found; null when not found.</summary>
    public string? NvJpegPath { get; init; }
    /// <summary>Why nvJPEG is not usable; null when it is.</summary>
    public string? NvJpegProblem { get; init; }
    /// <summary>nvjpegGetProperty's version.</summary>
    public string? NvJpegVersion { get; init; }
    /// <summary>True when a handle on NVJPEG_BACKEND_HARDWARE was created (the GPU has JPEG engines); null when nvJPEG did not load.</summary>
    public bool? HardwareBackend { get; init; }
    /// <summary>Why the hardware backend is not available.</summary>
    public string? HardwareUnavailable { get; init; }
    /// <summary>JPEG engines of the hardware backend (nvjpegGetHardwareDecoderInfo), where it says.</summary>
    public int? HardwareEngines { get; init; }
    /// <summary>Where NVRTC was loaded from; null when not found.</summary>
    public string? NvrtcPath { get; init; }
    /// <summary>NVRTC's version.</summary>
    public string? NvrtcVersion { get; init; }
    /// <summary>Why NVRTC is not usable; null when it is.</summary>
    public string? NvrtcProblem { get; init; }
    /// <summary>Both libraries load and nvJPEG starts (the driver and device are checked by the CUDA diagnosis).</summary>
    public bool Usable => NvJpegProblem is null && NvrtcProblem is null;
}

/// <summary>Loads nvJPEG and NVRTC as the GPU decoder would and reports what it finds; never throws for a missing piece.</summary>
public static class GpuDecoderDiagnostics
{
    /// <summary>Diagnoses the GPU decoder's libraries.</summary>
    public static GpuDecoderReport Diagnose()
    {
        var report = new GpuDecoderReport();
        var nvjpeg = NvJpegLibrary.TryLoad(out var reason);
        if (nvjpeg is null) report = report with { NvJpegProblem = reason };
        else
        {
            report = report with { NvJpegPath = $"{nvjpeg.Library.Path} ({nvjpeg.Library.Origin})" };
            try
            {
                report = report with { NvJpegVersion = nvjpeg.Version().ToString() };
                using var handle = nvjpeg.CreateHandle(NvJpegBackend.Hardware);
                report = report with
                {
                    HardwareBackend = handle.Backend == NvJpegBackend.Hardware,
                    HardwareUnavailable = handle.HardwareUnavailable,
                    HardwareEngines = handle.HardwareDecoderInfo()?.Engines,
                };
            }
            catch (NvJpegException e)
            {
                report = report with { NvJpegProblem = $"nvJPEG does not start: {e.Message}" };
            }
        }
        var nvrtc = NvrtcLibrary.TryLoad(out reason);
        if (nvrtc is null) return report with { NvrtcProblem = reason };
        report = report with { NvrtcPath = $"{nvrtc.Library.Path} ({nvrtc.Library.Origin})" };
        try
        {
            return report with { NvrtcVersion = nvrtc.Version().ToString() };
        }
        catch (NvrtcException e)
        {
            return report with { NvrtcProblem = e.Message };
        }
    }
}
