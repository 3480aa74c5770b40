namespace FeatureOnnx.Cuda;

/// <summary>
/// A CUDA call failed; the message names the call, its size and the CUDA error code. The stage that made the call
/// (Runtime today) turns it into its own exception, since Cuda lies below the stages and knows none of them.
/// </summary>
internal sealed class CudaException(string message) : Exception(message);
