namespace Kawa.Dataflow.Nats;

/// <summary>A NATS client failure.</summary>
public class NatsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NatsException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The connection could not be made, was closed, or was lost while an operation waited on it.</summary>
public sealed class NatsConnectionException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsConnectionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsConnectionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The server rejected the credentials (<c>Authorization Violation</c>) or the TLS handshake failed.</summary>
public sealed class NatsAuthenticationException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsAuthenticationException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsAuthenticationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsAuthenticationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The server or client broke the protocol (unparseable frame, server <c>-ERR</c>).</summary>
public sealed class NatsProtocolException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsProtocolException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A message (headers plus payload) is larger than the server's <c>max_payload</c>; it was not sent.</summary>
public sealed class NatsMaxPayloadExceededException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsMaxPayloadExceededException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsMaxPayloadExceededException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsMaxPayloadExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal NatsMaxPayloadExceededException(string subject, long size, long maxPayload)
        : base($"Message to '{subject}' is {size} bytes (headers plus payload) but the server's max_payload is {maxPayload} bytes; it was not sent.")
    {
        Size = size;
        MaxPayload = maxPayload;
    }

    /// <summary>The message's size in bytes.</summary>
    public long Size { get; }

    /// <summary>The server's limit in bytes.</summary>
    public long MaxPayload { get; }
}

/// <summary>A request got no reply in time.</summary>
public sealed class NatsTimeoutException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsTimeoutException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A request was published to a subject nobody subscribes to (status 503 from the server).</summary>
public sealed class NatsNoRespondersException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsNoRespondersException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsNoRespondersException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsNoRespondersException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>While disconnected the reconnect buffer stayed full for <see cref="NatsConnectionOptions.ReconnectBufferTimeout"/>;
/// the message was NOT sent.</summary>
public sealed class NatsReconnectBufferFullException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsReconnectBufferFullException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsReconnectBufferFullException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsReconnectBufferFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The JetStream API answered with an error.</summary>
public sealed class JetStreamApiException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public JetStreamApiException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public JetStreamApiException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public JetStreamApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception from the API's error fields.</summary>
    /// <param name="code">The HTTP-like status code (<c>code</c>), e.g. 404.</param>
    /// <param name="errorCode">The JetStream error code (<c>err_code</c>), e.g. 10059 (stream not found).</param>
    /// <param name="description">The server's description.</param>
    public JetStreamApiException(int code, int errorCode, string? description)
        : base($"JetStream API error {code} (err_code {errorCode}): {description}")
    {
        Code = code;
        ErrorCode = errorCode;
        Description = description;
    }

    /// <summary>The API's error fields with a message saying what was refused and what to do.</summary>
    internal JetStreamApiException(JetStreamApiException error, string message)
        : base(message, error)
    {
        Code = error.Code;
        ErrorCode = error.ErrorCode;
        Description = error.Description;
    }

    /// <summary>The HTTP-like status code, e.g. 404.</summary>
    public int Code { get; }

    /// <summary>The JetStream error code, e.g. 10059 (stream not found), 10014 (consumer not found).</summary>
    public int ErrorCode { get; }

    /// <summary>The server's description.</summary>
    public string? Description { get; }
}

/// <summary>A JetStream consumer failed in a way retrying cannot fix: it was deleted, or the pull request broke a
/// consumer limit (e.g. <c>Exceeded MaxRequestBatch</c>). Messages in flight are not acked and will be redelivered
/// to whoever consumes the (re-created) consumer.</summary>
public sealed class NatsJetStreamConsumerException : NatsException
{
    /// <summary>Creates the exception.</summary>
    public NatsJetStreamConsumerException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsJetStreamConsumerException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NatsJetStreamConsumerException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal NatsJetStreamConsumerException(string message, int statusCode, bool consumerDeleted)
        : base(message)
    {
        StatusCode = statusCode;
        ConsumerDeleted = consumerDeleted;
    }

    /// <summary>The status code that ended the consumer (409, 400, 503), or 0.</summary>
    public int StatusCode { get; }

    /// <summary>Whether the consumer (or its stream) no longer exists.</summary>
    public bool ConsumerDeleted { get; }
}
