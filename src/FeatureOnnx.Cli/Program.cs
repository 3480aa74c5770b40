using System.CommandLine;
using FeatureOnnx.Cli;

var root = new RootCommand(
    "featureonnx: image feature vectors from pretrained CNN backbones on ONNX Runtime, with torchvision-exact preprocessing.\n" +
    "Start with: featureonnx extract samples/ -o out/   (built-in ImageNet ResNet18, pooled 512-d vectors)");
foreach (var command in CommandSet.All())
    root.Subcommands.Add(command);
// Commands that need to stop cleanly handle SIGINT/SIGTERM themselves (GracefulStop).
// @LIST.txt is an input list (FolderSource: paths relative to the list, spaces and non-UTF-8 names kept, a pipe read
// after the stop handler is in place), not a System.CommandLine response file, which would split it at spaces.
return await root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null }).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
