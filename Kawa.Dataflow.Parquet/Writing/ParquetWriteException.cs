namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>A value could not be written (does not fit its column, null in a required column, wrong type).</summary>
/// <remarks>The batch that held the value is not written: the writer is left as it was before the call.</remarks>
public sealed class ParquetWriteException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ParquetWriteException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was wrong, naming the column.</param>
    public ParquetWriteException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What was wrong, naming the column.</param>
    /// <param name="innerException">The cause.</param>
    public ParquetWriteException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
