namespace FeatureOnnx.Preprocessing;

/// <summary>Where extraction decodes and resizes images.</summary>
public enum DecodeDevice
{
    /// <summary>The GPU when the run is on the CUDA provider and the GPU decoder can start (nvJPEG, NVRTC, the driver), else the CPU.</summary>
    Auto,
    /// <summary>The CPU: libjpeg-turbo/ImageSharp and PilResize, the exact reference path.</summary>
    Cpu,
    /// <summary>The GPU: nvJPEG and the PIL-exact CUDA resize (<see cref="GpuPreprocessor"/>); an error where it cannot start, unless a CPU fallback was allowed.</summary>
    Gpu,
}
