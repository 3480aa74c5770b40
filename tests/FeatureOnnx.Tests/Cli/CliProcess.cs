using System.Diagnostics;

namespace FeatureOnnx.Tests.Cli;

/// <summary>Runs the built CLI as a child process, so that what it prints to the console can be read.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Out, string Err);

    /// <summary>
    /// How to start the CLI with <paramref name="args"/>, output redirected. <paramref name="environment"/> sets (or,
    /// with a null value, removes) variables of the child; <paramref name="wrapper"/> runs it under another command,
    /// e.g. <c>taskset -c 0</c>.
    /// </summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, IReadOnlyList<string>? wrapper = null)
    {
        var psi = new ProcessStartInfo(wrapper is { Count: > 0 } ? wrapper[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (wrapper is { Count: > 0 })
        {
            foreach (var w in wrapper.Skip(1)) psi.ArgumentList.Add(w);
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "featureonnx.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) psi.Environment.Remove(key);
            else psi.Environment[key] = value;
        }
        return psi;
    }

    /// <summary>Runs the CLI to its end.</summary>
    public static Result Run(ProcessStartInfo psi)
    {
        using var process = Process.Start(psi)!;
        var err = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new Result(process.ExitCode, stdout, err.Result);
    }

    /// <summary>Runs the CLI with <paramref name="args"/> to its end.</summary>
    public static Result Run(params string[] args) => Run(StartInfo(args));
}
