using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace FeatureOnnx.Pipeline;

/// <summary>
/// Dedicated decode threads (not the .NET thread pool, whose threads also run the inference loop) that work through
/// one batch at a time. On Linux each thread can run at a lower scheduling priority (a higher nice value): when
/// inference runs on the same CPU cores, the kernel then gives the cores to ONNX Runtime's threads first and the
/// decoders take what they leave. Without it, a decoder preempting one of ONNX Runtime's intra-op threads stalls every
/// parallel operator at its barrier, which on a 2-core machine cost three times the decoding's own CPU time.
/// </summary>
internal sealed partial class DecodeWorkers : IDisposable
{
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _go;
    private readonly ManualResetEventSlim _done = new(false);
    private readonly int _nice;
    private Action<int>? _body;
    private int _next;
    private int _count;
    private int _active;
    private Exception? _error;
    private volatile bool _stopping;
    private volatile bool _abandoned;

    /// <summary>Starts <paramref name="workers"/> threads at nice value <paramref name="nice"/> (0: unchanged; Linux only).</summary>
    public DecodeWorkers(int workers, int nice)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        _nice = nice;
        _go = new SemaphoreSlim[workers];
        _threads = new Thread[workers];
        for (var t = 0; t < workers; t++)
        {
            _go[t] = new SemaphoreSlim(0);
            var index = t;
            _threads[t] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"featureonnx decode {t}" };
            _threads[t].Start();
        }
    }

    /// <summary>Whether lowering the threads' priority worked (false off Linux or when nice is 0).</summary>
    public bool PriorityLowered { get; private set; }

    /// <summary>
    /// Runs <paramref name="body"/> for 0..count-1 on the workers and returns when all are done, or throws
    /// <see cref="OperationCanceledException"/> as soon as <paramref name="cancellation"/> is cancelled, without waiting
    /// for items in progress: a read stuck in the kernel (a hung network file system) must not hold up a stop. The
    /// workers are then abandoned: the others take no further item, a stuck one finishes when its read returns, and
    /// <see cref="Dispose"/> does not wait for them (they are background threads).
    /// </summary>
    public void For(int count, Action<int> body, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_stopping || _abandoned, this);
        if (count == 0) return;
        _body = body;
        _count = count;
        _next = -1;
        _error = null;
        _active = _threads.Length;
        _done.Reset();
        foreach (var go in _go) go.Release();
        try
        {
            _done.Wait(cancellation);
        }
        catch (OperationCanceledException)
        {
            _abandoned = true;
            Interlocked.Exchange(ref _next, _count); // no worker starts another item
            throw;
        }
        _body = null;
        if (_error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    private void Loop(int index)
    {
        if (_nice != 0 && OperatingSystem.IsLinux())
        {
            try
            {
                // setpriority(PRIO_PROCESS, tid, nice) sets the nice value of this one thread on Linux.
                PriorityLowered = SetPriority(0, GetTid(), _nice) == 0 || PriorityLowered;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not glibc: run at normal priority.
            }
        }
        while (true)
        {
            _go[index].Wait();
            if (_stopping) return;
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref _next)) < _count)
                    _body!(i);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
                Interlocked.Exchange(ref _next, _count); // the others stop at their next item
            }
            if (Interlocked.Decrement(ref _active) == 0) _done.Set();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        foreach (var go in _go) go.Release();
        // An abandoned item may be stuck for good; its thread still touches the events when (if) it returns.
        if (_abandoned) return;
        foreach (var thread in _threads) thread.Join();
        foreach (var go in _go) go.Dispose();
        _done.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int prio);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();
}
