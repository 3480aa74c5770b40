using System.CommandLine;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Cli;

/// <summary>
/// Hidden <c>featureonnx e2e-worker</c>: the process <c>extract --e2e</c> starts to run an
/// end-to-end model, so that a decoder that exits or hangs on a hostile file takes only this process down.
/// Speaks <see cref="EndToEndWorker"/>'s protocol on stdin/stdout; nothing else may write to stdout.
/// </summary>
internal static class E2eWorkerCommand
{
    public const string Name = "e2e-worker";

    public static Command Create()
    {
        var command = new Command(Name, "Internal: runs an end-to-end model for 'extract --e2e' over stdin/stdout.");
        command.Hidden = true;
        command.SetAction(parse =>
        {
            using var stdin = Console.OpenStandardInput();
            using var stdout = Console.OpenStandardOutput();
            return EndToEndWorker.Serve(stdin, stdout); // the model and settings come in the protocol's start frame
        });
        return command;
    }

    /// <summary>This program, started again as a worker: the apphost, or <c>dotnet featureonnx.dll</c>.</summary>
    public static WorkerCommand Self()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this program's path to start a worker");
        if (Path.GetFileNameWithoutExtension(process) != "dotnet")
            return new WorkerCommand(process, [Name]); // the apphost, or a single-file publish
        // Run as 'dotnet featureonnx.dll': the dll sits next to the app (Assembly.Location is empty in a single file).
        var entry = Path.Combine(AppContext.BaseDirectory, typeof(E2eWorkerCommand).Assembly.GetName().Name + ".dll");
        return new WorkerCommand(process, [entry, Name]);
    }
}
