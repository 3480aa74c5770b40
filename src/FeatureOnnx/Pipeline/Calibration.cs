using System.Security.Cryptography;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>
/// Calibrates int8 quantisation on images (<see cref="IActivationCalibrator"/>): the first
/// <see cref="CalibrationOptions.Count"/> images of a folder, list or tar shard, preprocessed exactly as the manifest
/// says, run through the float32 graph on the CPU provider with the tensors to quantise exposed as outputs. MinMax takes
/// each tensor's smallest and largest value; Percentile a second pass builds a histogram of each tensor (8192 bins
/// between its min and max) and takes the (100 - P)-th and P-th percentiles (numpy's inverted_cdf: the smallest value
/// with that share of the values at or below it), to within one bin. The images are
/// hashed by content when the calibrator is made (the conversion cache key), and decoded only when a conversion runs.
/// </summary>
public sealed class ImageCalibrator : IActivationCalibrator
{
    /// <summary>Histogram bins of the percentile pass: its resolution is (max - min) / 8192 per tensor.</summary>
    public const int HistogramBins = 8192;

    private const int BatchSize = 8;

    private readonly ModelManifest _manifest;
    private readonly IReadOnlyList<InputItem> _items;
    private readonly CalibrationOptions _options;
    private readonly SessionSettings _settings;
    private readonly string _sha256;

    /// <summary>
    /// The calibrator of a run: on <paramref name="calibrationImages"/> when given, else on the first images of the
    /// run's own <paramref name="ownImages"/>, which a warning says (int8 is never quantised silently).
    /// </summary>
    /// <param name="manifest">The model (its preprocessing).</param>
    /// <param name="calibrationImages">The calibration set asked for (folders, files, @lists, tar shards), or null.</param>
    /// <param name="ownImages">The run's own inputs, calibrated on when no set was asked for.</param>
    /// <param name="ownSource">What the own images are, for the warning and the record (e.g. "the run's own input").</param>
    /// <param name="options">Method, percentile and count.</param>
    /// <param name="threads">Intra-op threads of the calibration session (0: every usable core).</param>
    /// <param name="warnings">Gets the line saying the run calibrates on its own images.</param>
    public static ImageCalibrator ForRun(ModelManifest manifest, IReadOnlyList<string>? calibrationImages, IReadOnlyList<string> ownImages, string ownSource,
        CalibrationOptions options, int threads, List<string> warnings)
    {
        if (calibrationImages is { Count: > 0 }) return new ImageCalibrator(manifest, calibrationImages, options, threads: threads);
        var own = new ImageCalibrator(manifest, ownImages, options, source: ownSource, threads: threads);
        warnings.Add($"int8: no calibration set given; calibrating on the first {own.ImageCount} images of {ownSource} ({own.Options.MethodName}, sha256 {own.Sha256[..16]}).");
        return own;
    }

    /// <summary>Lists and hashes the calibration images.</summary>
    /// <param name="manifest">The model (its preprocessing).</param>
    /// <param name="inputs">Folders, files, @lists or tar shards, as the extraction inputs take them.</param>
    /// <param name="options">Method, percentile and count. Default: <see cref="CalibrationOptions"/>'s.</param>
    /// <param name="source">Where the images come from, for the record (e.g. "the run's own input"). Default: the inputs.</param>
    /// <param name="threads">Intra-op threads of the calibration session. Default 0: every usable core.</param>
    /// <exception cref="ArgumentException">No image was found in <paramref name="inputs"/>.</exception>
    public ImageCalibrator(ModelManifest manifest, IReadOnlyList<string> inputs, CalibrationOptions? options = null, string? source = null, int threads = 0)
    {
        _manifest = manifest;
        _options = options ?? new CalibrationOptions();
        if (_options.Count <= 0) throw new ArgumentException($"calibration count {_options.Count}: must be at least 1.");
        var listing = FolderSource.Enumerate(inputs);
        if (listing.Items.Count == 0)
            throw new ArgumentException($"no calibration images found in {string.Join(", ", inputs)}; name a folder, @list or tar shard of images like those the model will see.");
        _items = listing.Items.Take(_options.Count).ToList();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var item in _items)
        {
            byte[] bytes;
            try { bytes = item.ReadBytes(); }
            catch (InputFileException) { bytes = []; } // counted as undecodable when calibrating
            hash.AppendData(BitConverter.GetBytes((long)bytes.Length));
            hash.AppendData(bytes);
        }
        _sha256 = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        Source = source ?? string.Join(", ", inputs);
        // a CPU session without the optimised-graph cache: the calibration graph is run once
        _settings = new SessionSettings { IntraOpThreads = threads, OptimizedModelCache = null };
    }

    /// <summary>Images listed for calibration (at most <see cref="CalibrationOptions.Count"/>).</summary>
    public int ImageCount => _items.Count;

    /// <summary>SHA-256 over the images' contents, in order.</summary>
    public string Sha256 => _sha256;

    /// <summary>Where the images come from.</summary>
    public string Source { get; }

    /// <summary>The calibration options.</summary>
    public CalibrationOptions Options => _options;

    /// <inheritdoc />
    public string Key => $"{_options.MethodName}|{_items.Count}|{_sha256}";

    /// <inheritdoc />
    public CalibrationResult Collect(byte[] graph, IReadOnlyList<string> outputs)
    {
        var (slots, failed) = Preprocess();
        if (slots.Count == 0)
            throw new InvalidDataException($"none of the {_items.Count} calibration images ({Source}) could be decoded.");
        var model = new PreparedModel
        {
            Manifest = _manifest,
            OnnxBytes = graph,
            Outputs = outputs.Select(o => new ModelOutput { Name = o }).ToList(),
        };
        using var session = new FeatureSession(model, _settings);
        var min = Enumerable.Repeat(float.PositiveInfinity, outputs.Count).ToArray();
        var max = Enumerable.Repeat(float.NegativeInfinity, outputs.Count).ToArray();
        ForEachBatch(session, slots, outputs, (k, values) =>
        {
            var (lo, hi) = MinMax(values);
            min[k] = Math.Min(min[k], lo);
            max[k] = Math.Max(max[k], hi);
        });
        var ranges = new TensorRange[outputs.Count];
        if (_options.Method == CalibrationMethod.MinMax)
            for (var k = 0; k < ranges.Length; k++) ranges[k] = new TensorRange(min[k], max[k]);
        else
        {
            var histograms = new long[outputs.Count][];
            for (var k = 0; k < histograms.Length; k++) histograms[k] = new long[HistogramBins];
            ForEachBatch(session, slots, outputs, (k, values) => Count(values, min[k], max[k], histograms[k]));
            for (var k = 0; k < ranges.Length; k++) ranges[k] = Percentiles(histograms[k], min[k], max[k], _options.Percentile);
        }
        return new CalibrationResult(ranges, new CalibrationRecord(_options.MethodName, slots.Count, failed, _sha256, Source));
    }

    /// <summary>The (100 - P)-th and P-th percentiles of the values counted in <paramref name="histogram"/> over [min, max], to within one bin.</summary>
    public static TensorRange Percentiles(long[] histogram, float min, float max, double percentile)
    {
        var total = histogram.Sum();
        if (total == 0 || max <= min) return new TensorRange(min, max);
        var width = (max - min) / histogram.Length;
        var lowRank = (long)Math.Ceiling((100 - percentile) / 100 * total);
        var highRank = (long)Math.Ceiling(percentile / 100 * total);
        long seen = 0;
        float lo = min, hi = max;
        var loFound = false;
        for (var b = 0; b < histogram.Length; b++)
        {
            seen += histogram[b];
            if (!loFound && seen >= Math.Max(lowRank, 1)) { lo = min + b * width; loFound = true; }
            if (seen >= highRank) { hi = Math.Min(max, min + (b + 1) * width); break; }
        }
        return new TensorRange(lo, hi);
    }

    private static (float Min, float Max) MinMax(ReadOnlySpan<float> values)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in values)
        {
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        return (lo, hi);
    }

    private static void Count(ReadOnlySpan<float> values, float min, float max, long[] histogram)
    {
        if (max <= min) { histogram[0] += values.Length; return; }
        var scale = histogram.Length / (max - min);
        var last = histogram.Length - 1;
        foreach (var v in values) histogram[Math.Clamp((int)((v - min) * scale), 0, last)]++;
    }

    /// <summary>Runs the slots in batches and hands every output of every batch to <paramref name="take"/> (per output in parallel).</summary>
    private static void ForEachBatch(FeatureSession session, IReadOnlyList<float[]> slots, IReadOnlyList<string> outputs, SpanAction take)
    {
        var slot = session.SlotLength;
        var batch = new float[BatchSize * slot];
        for (var start = 0; start < slots.Count; start += BatchSize)
        {
            var count = Math.Min(BatchSize, slots.Count - start);
            for (var i = 0; i < count; i++) slots[start + i].CopyTo(batch, i * slot);
            using var result = session.Run(batch, count);
            Parallel.For(0, outputs.Count, k => take(k, result.Values(outputs[k])));
        }
    }

    private delegate void SpanAction(int output, ReadOnlySpan<float> values);

    private (List<float[]> Slots, int Failed) Preprocess()
    {
        var slots = new float[_items.Count][];
        Parallel.For(0, _items.Count, () => new ImagePreprocessor(_manifest), (i, _, preprocessor) =>
        {
            try
            {
                var slot = new float[preprocessor.SlotLength];
                preprocessor.Preprocess(_items[i].ReadBytes(), slot);
                slots[i] = slot;
            }
            catch (Exception e) when (e is ImageDecodeException or InputFileException) { }
            return preprocessor;
        }, _ => { });
        var ok = slots.Where(s => s is not null).ToList();
        return (ok!, _items.Count - ok.Count);
    }
}
