using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Benchmarking;

/// <summary>
/// The inputs a benchmark feeds: images decoded, resized and cropped exactly as the manifest says, or seeded random
/// pixels. Held as 8-bit RGB crops, prepared once before any timing; <see cref="Fill"/> normalises them into float32
/// slots (ToTensor and Normalize, <see cref="TensorWriter"/>) and <see cref="FillCrops"/> copies the crops themselves
/// (the input of a <see cref="PrepareOptions.Uint8Input"/> model). Batches larger than <see cref="Count"/> reuse the
/// inputs in order (slot <c>i</c> holds input <c>i mod Count</c>).
/// </summary>
public sealed class BenchmarkInputs
{
    private readonly byte[] _crops;
    private readonly TensorWriter _writer;

    private BenchmarkInputs(byte[] crops, TensorWriter writer, int count, int cropLength, bool isRandom, string description, IReadOnlyList<string> images, IReadOnlyList<InputProblem> problems)
    {
        _crops = crops;
        _writer = writer;
        Count = count;
        CropLength = cropLength;
        IsRandom = isRandom;
        Description = description;
        Images = images;
        Problems = problems;
    }

    /// <summary>Distinct inputs held.</summary>
    public int Count { get; }

    /// <summary>Floats per normalised input (<see cref="Fill"/>).</summary>
    public int SlotLength => _writer.SlotLength;

    /// <summary>Bytes per crop: Height x Width x 3, HWC RGB (<see cref="FillCrops"/>).</summary>
    public int CropLength { get; }

    /// <summary>True for seeded random pixels, false for images.</summary>
    public bool IsRandom { get; }

    /// <summary>Where the inputs come from, in one sentence for reports.</summary>
    public string Description { get; }

    /// <summary>The images used, in order (empty for random inputs).</summary>
    public IReadOnlyList<string> Images { get; }

    /// <summary>Files found but not usable (not images, truncated...), with the reason.</summary>
    public IReadOnlyList<InputProblem> Problems { get; }

    /// <summary>
    /// <paramref name="count"/> random crops: every pixel channel uniform in 0..255 from <c>System.Random(seed)</c>
    /// (normalised as the manifest says by <see cref="Fill"/>, so the values span what real images give).
    /// </summary>
    public static BenchmarkInputs Random(ModelManifest manifest, int count, int seed = 42)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "at least one input");
        var writer = new TensorWriter(manifest.Input, manifest.Preprocess);
        var cropLength = manifest.Input.Height * manifest.Input.Width * 3;
        var crops = new byte[(long)count * cropLength];
        new Random(seed).NextBytes(crops);
        return new BenchmarkInputs(crops, writer, count, cropLength, true,
            $"seeded random pixels (System.Random({seed}), uniform 0..255, {count} distinct), normalised as the manifest says: no images were given", [], []);
    }

    /// <summary>
    /// The first <paramref name="maxCount"/> usable images of <paramref name="inputs"/> (files and folders, walked as
    /// <c>extract</c> walks them, in path order), decoded, resized and cropped as the manifest says.
    /// </summary>
    /// <param name="manifest">The model's preprocessing and input.</param>
    /// <param name="inputs">Files and folders.</param>
    /// <param name="maxCount">Images wanted.</param>
    /// <param name="maxPixels">Refuse images whose header declares more pixels.</param>
    /// <param name="workers">Parallel decodes (0: one per core).</param>
    /// <param name="decodeScale">JPEG decode scale, as for <c>extract</c>; default exact. Not exact: the description says
    /// how many images were decoded at each scale.</param>
    /// <exception cref="ArgumentException">No usable image.</exception>
    public static BenchmarkInputs FromImages(ModelManifest manifest, IReadOnlyList<string> inputs, int maxCount, long maxPixels = 100_000_000, int workers = 0, DecodeScale? decodeScale = null)
    {
        if (maxCount <= 0) throw new ArgumentOutOfRangeException(nameof(maxCount), "at least one input");
        var preprocessor = new ImagePreprocessor(manifest, maxPixels, decodeScale: decodeScale);
        var cropLength = preprocessor.CropLength;
        var listing = FolderSource.Enumerate(inputs);
        var problems = listing.Problems.Where(p => p.Reason != FolderSource.NotAnImage).ToList(); // a folder's other files are no concern of a benchmark
        var used = new List<string>();
        var all = new byte[(long)maxCount * cropLength];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = workers > 0 ? workers : Environment.ProcessorCount };
        // Decode in rounds of the images still needed, so a folder of a million files costs only what is used.
        var next = 0;
        while (used.Count < maxCount && next < listing.Items.Count)
        {
            var round = listing.Items.Skip(next).Take(maxCount - used.Count).ToArray();
            next += round.Length;
            var crops = new byte[round.Length][];
            var reasons = new string?[round.Length];
            Parallel.For(0, round.Length, parallel, i =>
            {
                try
                {
                    crops[i] = preprocessor.Crop(round[i].ReadBytes()); // only regular files, tar members in place
                }
                catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException)
                {
                    reasons[i] = e.Message;
                }
                catch (Exception e)
                {
                    reasons[i] = $"decoder failure ({e.GetType().Name}): {e.Message}";
                }
            });
            for (var i = 0; i < round.Length; i++)
            {
                if (reasons[i] is { } reason) { problems.Add(new InputProblem(round[i].Key, reason)); continue; }
                crops[i].CopyTo(all.AsSpan(used.Count * cropLength, cropLength));
                used.Add(round[i].Key);
            }
        }
        if (used.Count == 0)
            throw new ArgumentException($"no usable image in {string.Join(", ", inputs)}" +
                                        (problems.Count > 0 ? $" ({problems.Count} refused, first: {problems[0].Key}: {problems[0].Reason})" : "") + ".");
        if (used.Count < maxCount) Array.Resize(ref all, used.Count * cropLength);
        var description = $"{used.Count} image(s) from {string.Join(", ", inputs)}, preprocessed as the manifest says" +
                          (preprocessor.DecodeScale.Mode == DecodeScaleMode.Exact ? ""
                              : $", JPEGs decoded at scale {preprocessor.DecodeScale} ({string.Join(", ", preprocessor.DecodeScaleCounts.Snapshot().Select(p => $"{p.Value} at {p.Key}"))})") +
                          (used.Count < maxCount ? $"; reused in order to fill batches of up to {maxCount}" : "");
        return new BenchmarkInputs(all, new TensorWriter(manifest.Input, manifest.Preprocess), used.Count, cropLength, false, description, used, problems);
    }

    /// <summary>
    /// Fills the first <paramref name="batchSize"/> float32 slots of <paramref name="batch"/>: slot <c>i</c> gets input
    /// <c>i mod Count</c>, normalised as the manifest says (the same values as <see cref="ImagePreprocessor.Preprocess"/>).
    /// </summary>
    public void Fill(Span<float> batch, int batchSize)
    {
        if (batch.Length < (long)batchSize * SlotLength) throw new ArgumentException("batch buffer too small", nameof(batch));
        for (var i = 0; i < batchSize; i++)
            _writer.Write(Crop(i % Count), batch.Slice(i * SlotLength, SlotLength));
    }

    /// <summary>Fills the first <paramref name="batchSize"/> crops of <paramref name="batch"/> (HWC RGB bytes): crop <c>i</c> gets input <c>i mod Count</c>.</summary>
    public void FillCrops(Span<byte> batch, int batchSize)
    {
        if (batch.Length < (long)batchSize * CropLength) throw new ArgumentException("batch buffer too small", nameof(batch));
        for (var i = 0; i < batchSize; i++)
            Crop(i % Count).CopyTo(batch.Slice(i * CropLength, CropLength));
    }

    private ReadOnlySpan<byte> Crop(int index) => _crops.AsSpan(index * CropLength, CropLength);
}
