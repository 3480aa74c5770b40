using FeatureOnnx.Models;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// The input tensors a benchmark feeds: images preprocessed exactly as the manifest says, or seeded random pixels
/// normalised the same way. Prepared once, before any timing; batches larger than <see cref="Count"/> reuse the
/// inputs in order (slot <c>i</c> holds input <c>i mod Count</c>).
/// </summary>
public sealed class BenchmarkInputs
{
    private readonly float[] _slots;

    private BenchmarkInputs(float[] slots, int count, int slotLength, bool isRandom, string description, IReadOnlyList<string> images, IReadOnlyList<InputProblem> problems)
    {
        _slots = slots;
        Count = count;
        SlotLength = slotLength;
        IsRandom = isRandom;
        Description = description;
        Images = images;
        Problems = problems;
    }

    /// <summary>Distinct inputs held.</summary>
    public int Count { get; }

    /// <summary>Floats per input.</summary>
    public int SlotLength { get; }

    /// <summary>True for seeded random pixels, false for images.</summary>
    public bool IsRandom { get; }

    /// <summary>Where the inputs come from, in one sentence for reports.</summary>
    public string Description { get; }

    /// <summary>The images used, in order (empty for random inputs).</summary>
    public IReadOnlyList<string> Images { get; }

    /// <summary>Files found but not usable (not images, truncated...), with the reason.</summary>
    public IReadOnlyList<InputProblem> Problems { get; }

    /// <summary>
    /// <paramref name="count"/> random images: every pixel channel uniform in 0..255 from <c>System.Random(seed)</c>,
    /// then ToTensor and Normalize as the manifest says (so the values span what real images give).
    /// </summary>
    public static BenchmarkInputs Random(ModelManifest manifest, int count, int seed = 42)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "at least one input");
        var writer = new TensorWriter(manifest.Input, manifest.Preprocess);
        var slot = writer.SlotLength;
        var slots = new float[(long)count * slot];
        var random = new Random(seed);
        var pixels = new byte[manifest.Input.Height * manifest.Input.Width * 3];
        for (var i = 0; i < count; i++)
        {
            random.NextBytes(pixels);
            writer.Write(pixels, slots.AsSpan(i * slot, slot));
        }
        return new BenchmarkInputs(slots, count, slot, true,
            $"seeded random pixels (System.Random({seed}), uniform 0..255, {count} distinct), normalised as the manifest says: no images were given", [], []);
    }

    /// <summary>
    /// The first <paramref name="maxCount"/> usable images of <paramref name="inputs"/> (files and folders, walked as
    /// <c>extract</c> walks them, in path order), preprocessed as the manifest says.
    /// </summary>
    /// <exception cref="ArgumentException">No usable image.</exception>
    public static BenchmarkInputs FromImages(ModelManifest manifest, IReadOnlyList<string> inputs, int maxCount, long maxPixels = 100_000_000, int workers = 0)
    {
        if (maxCount <= 0) throw new ArgumentOutOfRangeException(nameof(maxCount), "at least one input");
        var preprocessor = new ImagePreprocessor(manifest, maxPixels);
        var slot = preprocessor.SlotLength;
        var listing = FolderSource.Enumerate(inputs);
        var problems = listing.Problems.ToList();
        var used = new List<string>();
        var slots = new float[(long)maxCount * slot];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = workers > 0 ? workers : Environment.ProcessorCount };
        // Decode in rounds of the images still needed, so a folder of a million files costs only what is used.
        var next = 0;
        while (used.Count < maxCount && next < listing.Items.Count)
        {
            var round = listing.Items.Skip(next).Take(maxCount - used.Count).ToArray();
            next += round.Length;
            var crops = new float[round.Length][];
            var reasons = new string?[round.Length];
            Parallel.For(0, round.Length, parallel, i =>
            {
                try
                {
                    var values = new float[slot];
                    preprocessor.Preprocess(File.ReadAllBytes(round[i].Path), values);
                    crops[i] = values;
                }
                catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException)
                {
                    reasons[i] = e.Message;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    reasons[i] = $"decoder failure ({e.GetType().Name}): {e.Message}";
                }
            });
            for (var i = 0; i < round.Length; i++)
            {
                if (reasons[i] is { } reason) { problems.Add(new InputProblem(round[i].Key, reason)); continue; }
                crops[i].CopyTo(slots.AsSpan(used.Count * slot, slot));
                used.Add(round[i].Key);
            }
        }
        if (used.Count == 0)
            throw new ArgumentException($"no usable image in {string.Join(", ", inputs)}" +
                                        (problems.Count > 0 ? $" ({problems.Count} refused, first: {problems[0].Key}: {problems[0].Reason})" : "") + ".");
        if (used.Count < maxCount) Array.Resize(ref slots, used.Count * slot);
        var description = $"{used.Count} image(s) from {string.Join(", ", inputs)}, preprocessed as the manifest says" +
                          (used.Count < maxCount ? $"; reused in order to fill batches of up to {maxCount}" : "");
        return new BenchmarkInputs(slots, used.Count, slot, false, description, used, problems);
    }

    /// <summary>Fills the first <paramref name="batchSize"/> slots of <paramref name="batch"/>: slot <c>i</c> gets input <c>i mod Count</c>.</summary>
    public void Fill(Span<float> batch, int batchSize)
    {
        if (batch.Length < (long)batchSize * SlotLength) throw new ArgumentException("batch buffer too small", nameof(batch));
        for (var i = 0; i < batchSize; i++)
            _slots.AsSpan(i % Count * SlotLength, SlotLength).CopyTo(batch.Slice(i * SlotLength, SlotLength));
    }
}
