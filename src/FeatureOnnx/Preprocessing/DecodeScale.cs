using System.Globalization;

namespace FeatureOnnx.Preprocessing;

/// <summary>How a JPEG may be decoded below its full size (libjpeg-turbo's DCT-domain scaling).</summary>
public enum DecodeScaleMode
{
    /// <summary>Full-size decode: crops identical to PIL without <c>Image.draft</c>.</summary>
    Exact,

    /// <summary>PIL's <c>Image.draft('RGB', (S, S))</c>, S the resize target: crops identical to PIL's draft path.</summary>
    Draft,

    /// <summary>The largest reduction that keeps the shorter side at least <see cref="DecodeScale.AutoFactor"/> x S,
    /// resized with the full-size image's geometry: crops close to exact ones.</summary>
    Auto,
}

/// <summary>
/// The decode-scale policy: which of libjpeg's 1/1, 1/2, 1/4, 1/8 scaled decodes a JPEG gets, given the size the
/// image will be resized to (the manifest's shorter-side target S). The scaling happens in the DCT domain (the
/// 8x8 blocks are inverse-transformed at 4x4, 2x2 or 1x1), so most of the IDCT, upsampling and colour conversion
/// work of a large photo is skipped; the entropy decoding is not. Only JPEGs decoded by libjpeg-turbo are scaled;
/// other formats, and JPEGs too small to scale, are decoded at full size. The policy knows nothing of libjpeg: a
/// decoder that downscales by other means (a GPU decoder's hardware resize) should take the same policy and report
/// through the same <see cref="DecodeScaleCounts"/>. Immutable.
/// </summary>
/// <remarks>
/// Only the power-of-two factors are used, although TurboJPEG also offers 3/8, 5/8...: those go through libjpeg's
/// plain-C IDCTs, which made a 12 MP decode no faster than the full-size SIMD path (tjDecompress2, 4000x3000 JPEG:
/// 1/1 25 ms, 7/8 57 ms, 5/8 36 ms, 3/8 21 ms, 1/2 17 ms, 1/4 14 ms, 1/8 12 ms), and only the power-of-two ones are
/// what PIL's draft mode produces.
/// </remarks>
public sealed record DecodeScale
{
    /// <summary>The default factor of <see cref="DecodeScaleMode.Auto"/>: the decoded shorter side stays at least
    /// twice the resize target, so the antialiased resize still does most of the filtering.</summary>
    public const double DefaultAutoFactor = 2;

    private DecodeScale(DecodeScaleMode mode, double autoFactor)
    {
        Mode = mode;
        AutoFactor = autoFactor;
    }

    /// <summary>Full-size decode (the default everywhere).</summary>
    public static DecodeScale Exact { get; } = new(DecodeScaleMode.Exact, DefaultAutoFactor);

    /// <summary>PIL's draft mode.</summary>
    public static DecodeScale Draft { get; } = new(DecodeScaleMode.Draft, DefaultAutoFactor);

    /// <summary>Auto with <see cref="DefaultAutoFactor"/>.</summary>
    public static DecodeScale Auto { get; } = new(DecodeScaleMode.Auto, DefaultAutoFactor);

    /// <summary>Auto with another factor (>= 1): the decoded shorter side stays at least <paramref name="factor"/> x S.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The factor is below 1, or not finite.</exception>
    public static DecodeScale AutoWith(double factor)
    {
        if (!double.IsFinite(factor) || factor < 1)
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "the auto decode-scale factor must be a number >= 1 (the decoded shorter side is kept at least that many times the resize target).");
        return new DecodeScale(DecodeScaleMode.Auto, factor);
    }

    /// <summary>Which policy.</summary>
    public DecodeScaleMode Mode { get; }

    /// <summary>For <see cref="DecodeScaleMode.Auto"/>: the decoded shorter side stays at least this many times the resize target.</summary>
    public double AutoFactor { get; }

    /// <summary>Parses <c>exact</c>, <c>draft</c>, <c>auto</c> or <c>auto:F</c> (F >= 1, e.g. auto:3).</summary>
    /// <exception cref="ArgumentException">Anything else; the message lists the accepted forms.</exception>
    public static DecodeScale Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        switch (t)
        {
            case "exact": return Exact;
            case "draft": return Draft;
            case "auto": return Auto;
        }
        if (t.StartsWith("auto:", StringComparison.Ordinal)
            && double.TryParse(t[5..], NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && double.IsFinite(f) && f >= 1)
            return AutoWith(f);
        throw new ArgumentException($"decode scale '{text}' is not valid: use exact, draft, auto or auto:F with F >= 1 (e.g. auto:3).");
    }

    /// <summary><c>exact</c>, <c>draft</c>, <c>auto</c> or <c>auto:F</c>, as <see cref="Parse"/> reads it.</summary>
    public override string ToString() => Mode switch
    {
        DecodeScaleMode.Draft => "draft",
        DecodeScaleMode.Auto when AutoFactor == DefaultAutoFactor => "auto",
        DecodeScaleMode.Auto => "auto:" + AutoFactor.ToString("0.###", CultureInfo.InvariantCulture),
        _ => "exact",
    };

    /// <summary>
    /// The denominator (1, 2, 4 or 8) of the scaled decode of a <paramref name="width"/> x <paramref name="height"/>
    /// JPEG (as stored; the choice is symmetric, so EXIF orientation does not matter) that will be resized to a shorter
    /// side of <paramref name="target"/>; 1 without a target (<paramref name="target"/> &lt;= 0).
    /// </summary>
    /// <remarks>
    /// Draft is Pillow 9.4's <c>JpegImageFile.draft</c>: <c>scale = min(W // S, H // S)</c>, then the largest of 8, 4,
    /// 2, 1 not above it; the image then has PIL's size <c>ceil(W / s) x ceil(H / s)</c>, which is also libjpeg's
    /// output size. Auto: the largest s with <c>ceil(min(W, H) / s) >= F x S</c>. Either way an image is scaled only
    /// while its shorter side stays >= 16 s, so that TurboJPEG's choice among its M/8 factors is exactly 1/s.
    /// </remarks>
    public int DenominatorFor(int width, int height, int target)
    {
        if (Mode == DecodeScaleMode.Exact || target <= 0 || width <= 0 || height <= 0) return 1;
        var shorter = Math.Min(width, height);
        foreach (var s in (ReadOnlySpan<int>)[8, 4, 2])
        {
            if (shorter < 16 * s) continue;
            var fits = Mode == DecodeScaleMode.Draft
                ? Math.Min(width / target, height / target) >= s
                : (shorter + s - 1) / s >= AutoFactor * target;
            if (fits) return s;
        }
        return 1;
    }
}

/// <summary>
/// How many images were decoded at each scale, counted by <see cref="ImagePreprocessor"/> across its threads, and
/// how many JPEGs decoded at full size would have been reduced by <see cref="DecodeScale.Auto"/>.
/// </summary>
public sealed class DecodeScaleCounts
{
    private readonly long[] _counts = new long[4]; // 1/1, 1/2, 1/4, 1/8
    private long _reducibleByAuto;

    /// <summary>Counts one decoded image.</summary>
    /// <param name="denominator">1, 2, 4 or 8.</param>
    /// <param name="reducibleByAuto">A full-size JPEG decode that <see cref="DecodeScale.Auto"/> would have reduced.</param>
    public void Add(int denominator, bool reducibleByAuto)
    {
        Interlocked.Increment(ref _counts[denominator switch { 2 => 1, 4 => 2, 8 => 3, _ => 0 }]);
        if (reducibleByAuto) Interlocked.Increment(ref _reducibleByAuto);
    }

    /// <summary>Images decoded so far per scale, keyed "1/1", "1/2", "1/4", "1/8"; scales never used are left out.</summary>
    public IReadOnlyDictionary<string, long> Snapshot()
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        string[] keys = ["1/1", "1/2", "1/4", "1/8"];
        for (var i = 0; i < keys.Length; i++)
            if (Interlocked.Read(ref _counts[i]) is > 0 and var n) result[keys[i]] = n;
        return result;
    }

    /// <summary>JPEGs decoded at full size that <see cref="DecodeScale.Auto"/> would have decoded at 1/2 or less.</summary>
    public long ReducibleByAuto => Interlocked.Read(ref _reducibleByAuto);
}
