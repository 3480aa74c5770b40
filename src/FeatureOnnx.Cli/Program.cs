using System.CommandLine;
using FeatureOnnx.Cli;

var root = new RootCommand(
    "featureonnx: image feature vectors from pretrained CNN backbones on ONNX Runtime, with torchvision-exact preprocessing.\n" +
    "Start with: featureonnx extract samples/ -o out/   (built-in ImageNet ResNet18, pooled 512-d vectors)");
foreach (var command in CommandSet.All())
    root.Subcommands.Add(command);
// Commands that need to stop cleanly handle SIGINT/SIGTERM themselves (GracefulStop).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
