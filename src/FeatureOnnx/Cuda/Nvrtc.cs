using System.Runtime.InteropServices;
using System.Text;

namespace FeatureOnnx.Cuda;

/// <summary>NVRTC refused a program; the message carries its result name and the compile log.</summary>
internal sealed class NvrtcException(string message) : Exception(message);

/// <summary>
/// NVRTC (<c>libnvrtc.so.13</c>), CUDA's run-time compiler: CUDA C++ source in, a cubin for one GPU architecture out,
/// which <see cref="CudaDevice.LoadModule"/> loads. Found by <see cref="CudaLibrarySearch"/> (it ships with the CUDA 13
/// toolkit and in pip's nvidia cu13 wheels). Compiling at run time means the app needs no nvcc at build time and the
/// same source runs as C in the tests (see Preprocessing/Kernels/pil_resize.cu).
/// </summary>
internal sealed unsafe class NvrtcLibrary
{
    /// <summary>The soname loaded.</summary>
    public const string FileName = "libnvrtc.so.13";

    /// <summary>Names the file to load instead of searching.</summary>
    public const string EnvironmentVariable = "FEATUREONNX_NVRTC";

    private readonly delegate* unmanaged<int*, int*, int> _version;
    private readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> _create;
    private readonly delegate* unmanaged<nint, int, byte**, int> _compile;
    private readonly delegate* unmanaged<nint, nuint*, int> _cubinSize;
    private readonly delegate* unmanaged<nint, byte*, int> _cubin;
    private readonly delegate* unmanaged<nint, nuint*, int> _logSize;
    private readonly delegate* unmanaged<nint, byte*, int> _log;
    private readonly delegate* unmanaged<nint*, int> _destroy;
    private readonly delegate* unmanaged<int, byte*> _errorString;

    private NvrtcLibrary(LoadedCudaLibrary library)
    {
        Library = library;
        nint Export(string name) => NativeLibrary.GetExport(library.Handle, name);
        _version = (delegate* unmanaged<int*, int*, int>)Export("nvrtcVersion");
        _create = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Export("nvrtcCreateProgram");
        _compile = (delegate* unmanaged<nint, int, byte**, int>)Export("nvrtcCompileProgram");
        _cubinSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetCUBINSize");
        _cubin = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetCUBIN");
        _logSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetProgramLogSize");
        _log = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetProgramLog");
        _destroy = (delegate* unmanaged<nint*, int>)Export("nvrtcDestroyProgram");
        _errorString = (delegate* unmanaged<int, byte*>)Export("nvrtcGetErrorString");
    }

    /// <summary>The file loaded and how it was found.</summary>
    public LoadedCudaLibrary Library { get; }

    /// <summary>Binds NVRTC; null with <paramref name="reason"/>.</summary>
    public static NvrtcLibrary? TryLoad(out string reason, Func<string, string?>? environment = null)
    {
        var library = CudaLibrarySearch.TryLoad(FileName, EnvironmentVariable, environment, out reason);
        if (library is null) return null;
        try
        {
            return new NvrtcLibrary(library);
        }
        catch (EntryPointNotFoundException e)
        {
            reason = $"{library.Path} lacks an NVRTC entry point ({e.Message})";
            return null;
        }
    }

    /// <summary>NVRTC's version (nvrtcVersion).</summary>
    public Version Version()
    {
        int major, minor;
        Check("nvrtcVersion", _version(&major, &minor), 0);
        return new Version(major, minor);
    }

    /// <summary>Compiles <paramref name="source"/> for compute capability <paramref name="architecture"/> (sm_XY) and returns the cubin.</summary>
    /// <exception cref="NvrtcException">The source did not compile; the message holds NVRTC's log.</exception>
    public byte[] CompileCubin(string source, string name, Version architecture, IReadOnlyList<string>? extraOptions = null)
    {
        var options = new List<string> { $"--gpu-architecture=sm_{architecture.Major}{architecture.Minor}" };
        if (extraOptions is not null) options.AddRange(extraOptions);
        var sourceBytes = Encoding.UTF8.GetBytes(source + "\0");
        var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        nint program;
        fixed (byte* s = sourceBytes) fixed (byte* n = nameBytes)
            Check("nvrtcCreateProgram", _create(&program, s, n, 0, null, null), 0);
        try
        {
            var optionBytes = options.Select(o => Encoding.UTF8.GetBytes(o + "\0")).ToArray();
            var handles = optionBytes.Select(o => GCHandle.Alloc(o, GCHandleType.Pinned)).ToArray();
            int result;
            try
            {
                var pointers = handles.Select(h => h.AddrOfPinnedObject()).ToArray();
                fixed (nint* p = pointers) result = _compile(program, pointers.Length, (byte**)p);
            }
            finally
            {
                foreach (var h in handles) h.Free();
            }
            if (result != 0)
                throw new NvrtcException($"nvrtcCompileProgram of {name} ({string.Join(" ", options)}) failed with {ErrorName(result)}: {Log(program)}");
            nuint size;
            Check("nvrtcGetCUBINSize", _cubinSize(program, &size), program);
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) Check("nvrtcGetCUBIN", _cubin(program, c), program);
            return cubin;
        }
        finally
        {
            _destroy(&program);
        }
    }

    private string Log(nint program)
    {
        nuint size;
        if (_logSize(program, &size) != 0 || size <= 1) return "(no log)";
        var log = new byte[(int)size];
        fixed (byte* l = log) if (_log(program, l) != 0) return "(no log)";
        return Encoding.UTF8.GetString(log, 0, log.Length - 1).Trim();
    }

    private string ErrorName(int result) => Marshal.PtrToStringUTF8((nint)_errorString(result)) ?? $"nvrtcResult {result}";

    private void Check(string call, int result, nint program)
    {
        if (result != 0) throw new NvrtcException($"{call} failed with {ErrorName(result)}{(program != 0 ? ": " + Log(program) : "")}");
    }
}
