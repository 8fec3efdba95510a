namespace Kawa.Dataflow;

/// <summary>A pipeline stopped because one of its stages failed fatally.</summary>
/// <remarks>Only the first failure is reported; the inner exception is the original. Every message that was not
/// finished when it happened was negatively acked (none was acked).</remarks>
public sealed class PipelineStageException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="pipeline">The pipeline's name.</param>
    /// <param name="stage">The failing stage: <c>source</c>, <c>handler:&lt;name&gt;</c> or <c>destination</c>.</param>
    /// <param name="innerException">What the stage threw.</param>
    public PipelineStageException(string pipeline, string stage, Exception innerException)
        : base($"Pipeline '{pipeline}' stopped: stage '{stage}' failed: {innerException?.Message}", innerException)
    {
        Pipeline = pipeline;
        Stage = stage;
    }

    /// <summary>The pipeline's name.</summary>
    public string Pipeline { get; }

    /// <summary>The failing stage: <c>source</c>, <c>handler:&lt;name&gt;</c> or <c>destination</c>.</summary>
    public string Stage { get; }
}
