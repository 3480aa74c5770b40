using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace FeatureOnnx.Runtime;

/// <summary>How to start a worker process: a program and its arguments (e.g. <c>featureonnx e2e-worker</c>); the model and session settings go to it in the protocol's start frame.</summary>
/// <param name="FileName">The executable.</param>
/// <param name="Arguments">Its arguments, one per entry (no shell quoting).</param>
public sealed record WorkerCommand(string FileName, IReadOnlyList<string> Arguments);

/// <summary>What a worker made of a request: each image's outputs, or the reason the request failed.</summary>
/// <param name="Outputs">Per image, the model's outputs (batch axis of 1); null on failure.</param>
/// <param name="Error">Why the request failed; null on success.</param>
/// <param name="WorkerLost">True when the worker process died or was killed for running past the time limit.</param>
public sealed record WorkerReply(IReadOnlyList<IReadOnlyList<EndToEndOutput>>? Outputs, string? Error, bool WorkerLost = false);

/// <summary>
/// The worker side of end-to-end extraction: loads an end-to-end model and answers requests on two streams
/// (the process's stdin and stdout), so that a decoder that calls <c>exit()</c> or never returns takes only this
/// process down. Protocol, little-endian: first the start frame (what to load, so that the worker's command line
/// carries no settings): string model path, byte provider (0 cpu, 1 cuda), int32 device, bool fallback to the CPU,
/// string CUDA options (<see cref="CudaProviderSettings.Parse"/>'s form), int32 intra-op threads, sbyte spinning
/// (-1 unset, 0, 1), int32 graph optimisation level, string optimised-model cache ("" none); then request = int32 image count (negative: quit), then per image int32
/// orientation, int32 byte count, bytes (several images: one call of a batched model). Replies: 'R' + string model
/// name + bool batched + string provider running it ("cpu", "cuda") + string fallback reason ("" when none) (once,
/// when ready), or instead 'P' + string message when the execution provider asked for cannot run; 'O' + int32 image count + per image int32 output count + outputs (string name, byte type
/// 1=float32 2=uint8, int32 rank, int64 dims, int32 byte count, data), or 'E' + string message. A string is int32
/// byte count + UTF-8.
/// </summary>
public static class EndToEndWorker
{
    internal const byte Ready = (byte)'R', Ok = (byte)'O', Error = (byte)'E', ProviderError = (byte)'P';

    /// <summary>Reads the start frame, loads the model, then serves requests until the input ends or asks to quit. Returns the process exit code.</summary>
    public static int Serve(Stream input, Stream output)
    {
        using var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        using var reader = new BinaryReader(input, Encoding.UTF8, leaveOpen: true);
        EndToEndSession session;
        string modelPath;
        SessionSettings settings;
        try
        {
            (modelPath, settings) = ReadStart(reader);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or FormatException or ArgumentException)
        {
            writer.Write(Error);
            WriteString(writer, $"worker protocol: no valid start frame ({e.Message})");
            writer.Flush();
            return 1;
        }
        try
        {
            session = new EndToEndSession(modelPath, settings);
        }
        catch (Exception e)
        {
            writer.Write(e is ExecutionProviderException ? ProviderError : Error);
            WriteString(writer, e is ExecutionProviderException ? e.Message : $"could not load {modelPath}: {e.Message}");
            writer.Flush();
            return 1;
        }
        using (session)
        {
            writer.Write(Ready);
            WriteString(writer, session.ModelName ?? Path.GetFileNameWithoutExtension(modelPath));
            writer.Write(session.IsBatched);
            WriteString(writer, session.Provider.ToString().ToLowerInvariant());
            WriteString(writer, session.Fallback ?? "");
            writer.Flush();
            while (true)
            {
                var images = new List<byte[]>();
                var orientations = new List<int>();
                try
                {
                    var count = reader.ReadInt32();
                    if (count < 0) return 0;
                    for (var i = 0; i < count; i++)
                    {
                        orientations.Add(reader.ReadInt32());
                        var length = reader.ReadInt32();
                        if (length < 0) return 0;
                        var bytes = reader.ReadBytes(length);
                        if (bytes.Length != length) return 0;
                        images.Add(bytes);
                    }
                }
                catch (EndOfStreamException)
                {
                    return 0;
                }
                IReadOnlyList<IReadOnlyList<EndToEndOutput>> results;
                try
                {
                    results = session.RunBatch(images, orientations);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    writer.Write(Error);
                    WriteString(writer, e.Message.Split('\n')[0]);
                    writer.Flush();
                    continue;
                }
                writer.Write(Ok);
                writer.Write(results.Count);
                foreach (var outputs in results) WriteOutputs(writer, outputs);
                writer.Flush();
            }
        }
    }

    private static void WriteOutputs(BinaryWriter writer, IReadOnlyList<EndToEndOutput> outputs)
    {
        writer.Write(outputs.Count);
        foreach (var o in outputs)
        {
            WriteString(writer, o.Name);
            writer.Write((byte)(o.Floats is not null ? 1 : 2));
            writer.Write(o.Shape.Length);
            foreach (var d in o.Shape) writer.Write(d);
            var data = o.Floats is not null ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(o.Floats.AsSpan()) : o.Bytes!.AsSpan();
            writer.Write(data.Length);
            writer.Write(data);
        }
    }

    /// <summary>The start frame: the model and how to run it (see the class summary).</summary>
    internal static void WriteStart(BinaryWriter writer, string modelPath, SessionSettings settings)
    {
        WriteString(writer, modelPath);
        writer.Write((byte)(settings.Provider == ExecutionProviderKind.Cuda ? 1 : 0));
        writer.Write(settings.DeviceId);
        writer.Write(settings.FallbackToCpu);
        WriteString(writer, settings.Cuda.ToString());
        writer.Write(settings.IntraOpThreads);
        writer.Write((sbyte)(settings.AllowSpinning switch { null => -1, false => 0, true => 1 }));
        writer.Write((int)settings.OptimizationLevel);
        WriteString(writer, settings.OptimizedModelCache ?? "");
        writer.Write(settings.Int8ActivationKernels);
        writer.Flush();
    }

    internal static (string Model, SessionSettings Settings) ReadStart(BinaryReader reader)
    {
        var model = ReadString(reader);
        var provider = reader.ReadByte() switch { 0 => ExecutionProviderKind.Cpu, 1 => ExecutionProviderKind.Cuda, var b => throw new InvalidDataException($"provider {b}") };
        var device = reader.ReadInt32();
        var fallback = reader.ReadBoolean();
        var cuda = ReadString(reader);
        var threads = reader.ReadInt32();
        var spinning = reader.ReadSByte() switch { -1 => (bool?)null, 0 => false, _ => true };
        var level = (Microsoft.ML.OnnxRuntime.GraphOptimizationLevel)reader.ReadInt32();
        var cache = ReadString(reader);
        var int8Kernels = reader.ReadBoolean();
        return (model, new SessionSettings
        {
            Provider = provider, DeviceId = device, FallbackToCpu = fallback, Cuda = CudaProviderSettings.Parse(cuda.Length == 0 ? null : cuda),
            IntraOpThreads = threads, AllowSpinning = spinning, OptimizationLevel = level, OptimizedModelCache = cache.Length == 0 ? null : cache,
            Int8ActivationKernels = int8Kernels,
        });
    }

    internal static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    internal static string ReadString(BinaryReader reader)
    {
        var length = reader.ReadInt32();
        if (length is < 0 or > 1 << 20) throw new InvalidDataException($"worker protocol: string of {length} bytes");
        return Encoding.UTF8.GetString(reader.ReadBytes(length));
    }
}

/// <summary>
/// One worker process (<see cref="EndToEndWorker"/>) seen from the parent: sends an image, waits for the reply at
/// most a time limit, and kills the process when it runs past it. After a reply with
/// <see cref="WorkerReply.WorkerLost"/> the client is dead (<see cref="IsAlive"/> false): dispose it and start another.
/// </summary>
internal sealed class EndToEndWorkerClient : IDisposable
{
    private const int StderrLines = 8;
    private readonly Process _process;
    private readonly BinaryReader _reader;
    private readonly BinaryWriter _writer;
    private readonly Queue<string> _stderr = new();

    /// <summary>Starts a worker and waits until its model is loaded.</summary>
    /// <exception cref="ExecutionProviderException">The worker cannot run the provider asked for (and no fallback was allowed).</exception>
    /// <exception cref="InvalidDataException">The worker could not load the model (the message has its reason).</exception>
    /// <exception cref="IOException">The worker process did not start, died while starting or did not get ready in time.</exception>
    public EndToEndWorkerClient(WorkerCommand command, string modelPath, SessionSettings settings, TimeSpan startupTimeout)
    {
        var start = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in command.Arguments) start.ArgumentList.Add(a);
        _process = Process.Start(start) ?? throw new IOException($"could not start {command.FileName}");
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr)
            {
                _stderr.Enqueue(e.Data);
                while (_stderr.Count > StderrLines) _stderr.Dequeue();
            }
        };
        _process.BeginErrorReadLine();
        _reader = new BinaryReader(_process.StandardOutput.BaseStream, Encoding.UTF8);
        _writer = new BinaryWriter(_process.StandardInput.BaseStream, Encoding.UTF8);
        try
        {
            EndToEndWorker.WriteStart(_writer, modelPath, settings);
        }
        catch (IOException) { } // the worker died at once: the ready read below reports it with its stderr
        var ready = Task.Run(() =>
        {
            var kind = _reader.ReadByte();
            var text = EndToEndWorker.ReadString(_reader);
            if (kind != EndToEndWorker.Ready) return (Kind: kind, Text: text, Batched: false, Provider: "", Fallback: "");
            var batched = _reader.ReadBoolean();
            return (Kind: kind, Text: text, Batched: batched, Provider: EndToEndWorker.ReadString(_reader), Fallback: EndToEndWorker.ReadString(_reader));
        });
        Exception? failure = null;
        try
        {
            if (!ready.Wait(startupTimeout)) failure = new IOException($"worker did not load the model within {startupTimeout.TotalSeconds:0} s");
            else if (ready.Result.Kind == EndToEndWorker.ProviderError) failure = new ExecutionProviderException(ready.Result.Text);
            else if (ready.Result.Kind != EndToEndWorker.Ready) failure = new InvalidDataException(ready.Result.Text);
            else
            {
                (ModelName, IsBatched) = (ready.Result.Text, ready.Result.Batched);
                Provider = ready.Result.Provider == "cuda" ? ExecutionProviderKind.Cuda : ExecutionProviderKind.Cpu;
                Fallback = ready.Result.Fallback.Length == 0 ? null : ready.Result.Fallback;
            }
        }
        catch (AggregateException e)
        {
            failure = new IOException($"worker exited while starting ({e.InnerException?.Message}){StderrTail()}");
        }
        if (failure is not null)
        {
            Kill();
            _process.Dispose();
            throw failure;
        }
    }

    /// <summary>The provider the worker's session runs on.</summary>
    public ExecutionProviderKind Provider { get; }

    /// <summary>Set when the worker fell back to the CPU (<c>--fallback cpu</c>); says why.</summary>
    public string? Fallback { get; }

    /// <summary>The model name the worker reported.</summary>
    public string? ModelName { get; }

    /// <summary>True when the worker's model is batched (one request may carry many images).</summary>
    public bool IsBatched { get; }

    /// <summary>False once the process has died or been killed.</summary>
    public bool IsAlive { get; private set; } = true;

    /// <summary>Worker process id (for tests and logs).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Runs one image, or several in one call of a batched model; never throws for a bad image or a dying worker.</summary>
    public WorkerReply Run(IReadOnlyList<(byte[] Bytes, int Orientation)> images, TimeSpan timeout)
    {
        if (!IsAlive) throw new InvalidOperationException("the worker is gone; start another");
        lock (_stderr) _stderr.Clear(); // what a failure reports is this request's messages only
        var exchange = Task.Run(() =>
        {
            _writer.Write(images.Count);
            foreach (var (bytes, orientation) in images)
            {
                _writer.Write(orientation);
                _writer.Write(bytes.Length);
                _writer.Write(bytes);
            }
            _writer.Flush();
            return ReadReply();
        });
        try
        {
            if (exchange.Wait(timeout)) return exchange.Result;
        }
        catch (AggregateException)
        {
            // The pipe broke: the process died while decoding (libjpeg's exit(1), a crash).
            if (_process.WaitForExit(2000)) _process.WaitForExit(); // the no-argument overload also drains stderr
            var code = _process.HasExited ? $"exit code {_process.ExitCode}" : "no exit code";
            Kill();
            return new WorkerReply(null, $"decoder process died ({code}){StderrTail()}", WorkerLost: true);
        }
        Kill();
        return new WorkerReply(null, $"decoding ran past the time limit of {timeout.TotalSeconds:0.#} s; its worker was killed{StderrTail()}", WorkerLost: true);
    }

    private WorkerReply ReadReply()
    {
        var kind = _reader.ReadByte();
        if (kind == EndToEndWorker.Error) return new WorkerReply(null, EndToEndWorker.ReadString(_reader));
        if (kind != EndToEndWorker.Ok) throw new InvalidDataException($"worker protocol: unexpected reply 0x{kind:X2}");
        var images = _reader.ReadInt32();
        var all = new List<IReadOnlyList<EndToEndOutput>>(images);
        for (var image = 0; image < images; image++) all.Add(ReadOutputs());
        return new WorkerReply(all, null);
    }

    private List<EndToEndOutput> ReadOutputs()
    {
        var count = _reader.ReadInt32();
        var outputs = new List<EndToEndOutput>(count);
        for (var i = 0; i < count; i++)
        {
            var name = EndToEndWorker.ReadString(_reader);
            var type = _reader.ReadByte();
            var rank = _reader.ReadInt32();
            var shape = new long[rank];
            for (var r = 0; r < rank; r++) shape[r] = _reader.ReadInt64();
            var length = _reader.ReadInt32();
            var data = _reader.ReadBytes(length);
            if (data.Length != length) throw new EndOfStreamException();
            outputs.Add(type == 1
                ? new EndToEndOutput(name, shape, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data.AsSpan()).ToArray(), null)
                : new EndToEndOutput(name, shape, null, data));
        }
        return outputs;
    }

    private string StderrTail()
    {
        lock (_stderr)
        {
            var lines = _stderr.Where(l => !l.StartsWith("libpng warning", StringComparison.Ordinal)).ToList();
            return lines.Count == 0 ? "" : ": " + string.Join(" | ", lines.TakeLast(3));
        }
    }

    private void Kill()
    {
        IsAlive = false;
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Asks the worker to quit (kills it if it does not within a second) and frees the process.</summary>
    public void Dispose()
    {
        if (IsAlive)
        {
            try
            {
                _writer.Write(-1);
                _writer.Flush();
                if (!_process.WaitForExit(1000)) Kill();
            }
            catch (IOException)
            {
                Kill();
            }
            IsAlive = false;
        }
        _process.Dispose();
    }
}
