using System.Diagnostics;
using FeatureOnnx.Models;
using Microsoft.ML.OnnxRuntime;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Runtime;

/// <summary>One output of an end-to-end run, copied out of ONNX Runtime's buffers.</summary>
/// <param name="Name">Graph output name.</param>
/// <param name="Shape">Dimensions, batch axis (1) first for features.</param>
/// <param name="Floats">Values of a float output, else null.</param>
/// <param name="Bytes">Values of a uint8 output (the crop), else null.</param>
public sealed record EndToEndOutput(string Name, long[] Shape, float[]? Floats, byte[]? Bytes);

/// <summary>
/// An ONNX Runtime session over an end-to-end model (<see cref="EndToEndModelBuilder"/>): the onnxruntime-extensions
/// operators are registered, one encoded image goes in per call. Runs in the calling process: the extensions'
/// DecodeImage can end the process (libjpeg's exit(1)) or loop forever on hostile bytes, so untrusted inputs should
/// be checked first (<see cref="Preprocessing.EndToEndInputCheck"/>) and run in a worker process
/// (<see cref="EndToEndWorkerClient"/>). Thread-safe: concurrent <see cref="Run"/> calls are allowed.
/// </summary>
public sealed class EndToEndSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _outputNames;

    /// <summary>Loads an end-to-end model file.</summary>
    /// <exception cref="ExecutionProviderException">The provider could not be created.</exception>
    public EndToEndSession(string modelPath, SessionSettings? settings = null)
        : this(File.ReadAllBytes(modelPath), settings)
    {
    }

    /// <summary>Loads an end-to-end model from memory.</summary>
    public EndToEndSession(byte[] model, SessionSettings? settings = null)
    {
        Settings = settings ?? new SessionSettings();
        var sw = Stopwatch.StartNew();
        (_session, Provider, Fallback) = FeatureSession.CreateSession(model, Settings, options =>
        {
            // The overridable exif_orientation default is deliberate; ORT warns about it on every load.
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            options.RegisterOrtExtensions();
        });
        CreationTime = sw.Elapsed;
        IsBatched = _session.InputMetadata.ContainsKey(EndToEndModel.BatchImagesInput);
        if (!IsBatched && !_session.InputMetadata.ContainsKey(EndToEndModel.ImageInput))
        {
            _session.Dispose();
            throw new InvalidDataException($"not an end-to-end model: no input '{EndToEndModel.ImageInput}' (inputs: {string.Join(", ", _session.InputMetadata.Keys)}). Make one with 'featureonnx export-e2e'.");
        }
        _outputNames = _session.OutputMetadata.Keys.ToArray();
        if (_session.ModelMetadata.CustomMetadataMap.TryGetValue(EndToEndModel.ManifestMetadataKey, out var json))
            ModelName = System.Text.Json.JsonDocument.Parse(json).RootElement.TryGetProperty("name", out var n) ? n.GetString() : null;
    }

    /// <summary>The settings asked for.</summary>
    public SessionSettings Settings { get; }

    /// <summary>The provider actually running the model.</summary>
    public ExecutionProviderKind Provider { get; }

    /// <summary>Set when the requested provider was replaced by the CPU; says why.</summary>
    public string? Fallback { get; }

    /// <summary>Time spent creating the session.</summary>
    public TimeSpan CreationTime { get; }

    /// <summary>The model's name from its embedded manifest, when present.</summary>
    public string? ModelName { get; }

    /// <summary>True for a model made with <see cref="EndToEndOptions.Batched"/>: one call runs many files.</summary>
    public bool IsBatched { get; }

    /// <summary>Output names, in graph order.</summary>
    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <summary>Runs one encoded image. <paramref name="orientation"/> is its EXIF Orientation tag (1: as stored).</summary>
    /// <exception cref="OnnxRuntimeException">The model failed on this input (e.g. a corrupt PNG).</exception>
    public IReadOnlyList<EndToEndOutput> Run(byte[] encoded, int orientation = 1) =>
        IsBatched ? RunBatch([encoded], [orientation])[0] : RunOne(encoded, orientation);

    /// <summary>
    /// Runs several encoded images: in one call for a batched model, one call each otherwise. Returns each image's
    /// outputs with a batch axis of 1. A failure fails the whole call.
    /// </summary>
    /// <exception cref="OnnxRuntimeException">The model failed on one of the inputs.</exception>
    public IReadOnlyList<IReadOnlyList<EndToEndOutput>> RunBatch(IReadOnlyList<byte[]> encoded, IReadOnlyList<int> orientations)
    {
        if (encoded.Count != orientations.Count) throw new ArgumentException("one orientation per image");
        if (!IsBatched) return encoded.Select((e, i) => RunOne(e, orientations[i])).ToList();
        var images = encoded.Select(e => OrtValue.CreateTensorValueFromMemory(e, [e.Length])).ToList();
        try
        {
            // The images stay alive (pinned) until the run is over; whatever the sequence did not take is disposed below.
            using var sequence = OrtValue.CreateSequence(images);
            using var exif = OrtValue.CreateTensorValueFromMemory(orientations.Select(o => (long)o).ToArray(), [orientations.Count]);
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, [EndToEndModel.BatchImagesInput, EndToEndModel.BatchOrientationsInput], [sequence, exif], _outputNames);
            var all = Enumerable.Range(0, _outputNames.Length).Select(i => Copy(_outputNames[i], outputs[i])).ToList();
            return Enumerable.Range(0, encoded.Count).Select(row => (IReadOnlyList<EndToEndOutput>)all.Select(o => Row(o, row)).ToList()).ToList();
        }
        finally
        {
            foreach (var v in images) v.Dispose();
        }
    }

    private static EndToEndOutput Row(EndToEndOutput all, int row)
    {
        long[] shape = [1, .. all.Shape[1..]];
        var length = (int)all.Shape[1..].Aggregate(1L, (a, b) => a * b);
        return all.Floats is not null
            ? new EndToEndOutput(all.Name, shape, all.Floats.AsSpan(row * length, length).ToArray(), null)
            : new EndToEndOutput(all.Name, shape, null, all.Bytes!.AsSpan(row * length, length).ToArray());
    }

    private IReadOnlyList<EndToEndOutput> RunOne(byte[] encoded, int orientation)
    {
        using var image = OrtValue.CreateTensorValueFromMemory(encoded, [encoded.Length]);
        using var exif = OrtValue.CreateTensorValueFromMemory(new long[] { orientation }, []);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [EndToEndModel.ImageInput, EndToEndModel.OrientationInput], [image, exif], _outputNames);
        return Enumerable.Range(0, _outputNames.Length).Select(i => Copy(_outputNames[i], outputs[i])).ToList();
    }

    private static EndToEndOutput Copy(string name, OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        return info.ElementDataType switch
        {
            OrtElementType.Float => new EndToEndOutput(name, info.Shape, value.GetTensorDataAsSpan<float>().ToArray(), null),
            OrtElementType.UInt8 => new EndToEndOutput(name, info.Shape, null, value.GetTensorDataAsSpan<byte>().ToArray()),
            var t => throw new InvalidDataException($"output '{name}' has element type {t}; end-to-end outputs are float32 or uint8."),
        };
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
