using System.Reflection;
using System.Text.RegularExpressions;
using FeatureOnnx.Runtime.Int8Kernels;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Runtime.Int8Kernels;

/// <summary>
/// The C ABI that <see cref="ActivationOps"/> writes by hand, checked against onnxruntime_c_api.h of the ONNX Runtime
/// package this build loads (from the NuGet package folder): every OrtApi function-table index it uses, and the field
/// order of OrtCustomOp.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ActivationOpsTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void OrtApi_indices_are_those_of_the_header()
    {
        var members = OrtApiMembers(Header());
        var expected = new Dictionary<string, string>
        {
            ["CreateStatus"] = "CreateStatus", ["GetErrorMessage"] = "GetErrorMessage", ["ReleaseStatus"] = "ReleaseStatus",
            ["CreateCustomOpDomain"] = "CreateCustomOpDomain", ["CustomOpDomainAdd"] = "CustomOpDomain_Add", ["AddCustomOpDomain"] = "AddCustomOpDomain",
            ["GetTensorMutableData"] = "GetTensorMutableData", ["GetDimensionsCount"] = "GetDimensionsCount", ["GetDimensions"] = "GetDimensions",
            ["GetTensorTypeAndShape"] = "GetTensorTypeAndShape", ["KernelContextGetInputCount"] = "KernelContext_GetInputCount",
            ["KernelContextGetInput"] = "KernelContext_GetInput", ["KernelContextGetOutput"] = "KernelContext_GetOutput",
            ["ReleaseTensorTypeAndShapeInfo"] = "ReleaseTensorTypeAndShapeInfo", ["KernelContextParallelFor"] = "KernelContext_ParallelFor",
        };
        var constants = typeof(ActivationOps.ApiIndex).GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(f => f.Name, f => (int)f.GetRawConstantValue()!);
        Assert.Equal(expected.Keys.Order(), constants.Keys.Order());
        foreach (var (constant, function) in expected)
            Assert.True(members.IndexOf(function) == constants[constant], $"{function}: header index {members.IndexOf(function)}, ours {constants[constant]}");
        output.WriteLine($"{members.Count} OrtApi entries in the header; ours checked: {constants.Count}");
    }

    [SkippableFact]
    public void OrtCustomOp_fields_are_in_the_header_order()
    {
        var source = File.ReadAllText(Header());
        var start = source.IndexOf("struct OrtCustomOp {", StringComparison.Ordinal);
        var body = Strip(source[start..source.IndexOf("\n};", start, StringComparison.Ordinal)]);
        var header = Regex.Matches(body, @"\(\s*ORT_API_CALL\s*\*\s*(\w+)\s*\)").Select(m => m.Groups[1].Value).ToList();
        var ours = typeof(ActivationOps).GetNestedType("OrtCustomOp", BindingFlags.NonPublic)!
            .GetFields(BindingFlags.Public | BindingFlags.Instance).OrderBy(f => f.MetadataToken).Select(f => f.Name).ToList();
        Assert.Equal("Version", ours[0]);
        Assert.Equal(header, ours.Skip(1).ToList());
    }

    [Fact]
    public void The_domain_registers_with_session_options()
    {
        using var options = new SessionOptions();
        ActivationOps.Register(options);
        ActivationOps.Register(options); // the one process-wide domain, added again: refused by nothing
    }

    /// <summary>onnxruntime_c_api.h of the ONNX Runtime the tests load, in the NuGet package folder.</summary>
    private static string Header()
    {
        var version = OrtEnv.Instance().GetVersionString();
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var candidates = new[]
        {
            Path.Combine(root, "microsoft.ml.onnxruntime.gpu.linux", version, "buildTransitive", "native", "include", "onnxruntime_c_api.h"),
            Path.Combine(root, "microsoft.ml.onnxruntime", version, "build", "native", "include", "onnxruntime_c_api.h"),
        };
        var header = candidates.FirstOrDefault(File.Exists);
        Skip.If(header is null, $"onnxruntime_c_api.h of ONNX Runtime {version} is not in the NuGet package folder {root}");
        return header!;
    }

    private static string Strip(string source) => Regex.Replace(Regex.Replace(source, @"/\*.*?\*/", "", RegexOptions.Singleline), @"//[^\n]*", "");

    /// <summary>The OrtApi struct's entries in order, as the header's macros name them.</summary>
    private static List<string> OrtApiMembers(string path)
    {
        var source = File.ReadAllText(path);
        var start = source.IndexOf("struct OrtApi {", StringComparison.Ordinal);
        var body = Strip(source[(start + "struct OrtApi {".Length)..source.IndexOf("\n};", start, StringComparison.Ordinal)]);
        var members = new List<string>();
        foreach (var statement in body.Split(';').Select(s => Regex.Replace(s, @"\s+", " ").Trim()).Where(s => s.Length > 0))
        {
            var m = Regex.Match(statement, @"^ORT_API2_STATUS\((\w+)");
            if (!m.Success) m = Regex.Match(statement, @"^ORT_API_T\([^,]+,\s*(\w+)");
            if (m.Success) { members.Add(m.Groups[1].Value); continue; }
            m = Regex.Match(statement, @"^ORT_CLASS_RELEASE\((\w+)\)");
            if (m.Success) { members.Add("Release" + m.Groups[1].Value); continue; }
            m = Regex.Match(statement, @"\(\s*ORT_API_CALL\s*\*\s*(\w+)\s*\)");
            Assert.True(m.Success, $"unparsed OrtApi entry: {statement[..Math.Min(120, statement.Length)]}");
            members.Add(m.Groups[1].Value);
        }
        return members;
    }
}
