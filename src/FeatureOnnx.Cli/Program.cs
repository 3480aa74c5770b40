using System.CommandLine;
using FeatureOnnx.Cli;

// Commands that need to stop cleanly handle SIGINT/SIGTERM themselves (GracefulStop).
return await CommandSet.InvokeAsync(args, new InvocationConfiguration { ProcessTerminationTimeout = null });
