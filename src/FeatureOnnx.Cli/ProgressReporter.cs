using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Cli;

/// <summary>A progress bar on a terminal (stderr), a plain line every few seconds otherwise.</summary>
internal sealed class ProgressReporter(bool quiet) : IProgress<ExtractionProgress>, IDisposable
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);
    private readonly bool _terminal = !Console.IsErrorRedirected;
    private readonly object _gate = new();
    private TimeSpan _lastPlain = TimeSpan.Zero;
    private bool _drawn;

    public void Report(ExtractionProgress p)
    {
        if (quiet) return;
        lock (_gate)
        {
            var rate = p.ImagesPerSecond;
            var eta = rate > 0 ? TimeSpan.FromSeconds((p.Total - p.Done) / rate) : TimeSpan.Zero;
            if (_terminal)
            {
                const int width = 30;
                var fraction = p.Total > 0 ? (double)p.Done / p.Total : 1;
                var filled = (int)(fraction * width);
                Console.Error.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {p.Done}/{p.Total} {fraction:P0} {rate:0.0} img/s, {p.Failed} failed, eta {eta:hh\\:mm\\:ss}  ");
                _drawn = true;
            }
            else if (p.Elapsed - _lastPlain >= PlainInterval || p.Done == p.Total)
            {
                _lastPlain = p.Elapsed;
                Console.Error.WriteLine($"progress: {p.Done}/{p.Total} done, {p.Failed} failed, {rate:0.0} img/s, eta {eta:hh\\:mm\\:ss}");
            }
        }
    }

    public void Finish()
    {
        lock (_gate)
        {
            if (_drawn) Console.Error.WriteLine();
            _drawn = false;
        }
    }

    public void Dispose() => Finish();
}
