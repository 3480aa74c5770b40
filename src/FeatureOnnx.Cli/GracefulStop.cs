using System.Runtime.InteropServices;

namespace FeatureOnnx.Cli;

/// <summary>
/// First SIGINT/SIGTERM: cancel <see cref="Token"/> so the run finishes the batch being run and writes consistent,
/// resumable outputs. A second signal ends the process at once (the outputs stay resumable with --resume).
/// </summary>
internal sealed class GracefulStop : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;
    private int _signals;

    public GracefulStop(CancellationToken outer)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public CancellationToken Token => _source.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _signals) > 1) return; // default action: terminate now
        context.Cancel = true;
        Console.Error.WriteLine($"\n{context.Signal}: stopping after the batch being run (signal again to abort; --resume continues either way)");
        _source.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _source.Dispose();
    }
}
