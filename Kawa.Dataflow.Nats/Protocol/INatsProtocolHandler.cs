using System.Buffers;

namespace Kawa.Dataflow.Nats.Protocol;

/// <summary>Receives the operations the parser finds. Spans and sequences are valid only during the call.</summary>
internal interface INatsProtocolHandler
{
    void OnInfo(ReadOnlySpan<byte> json);

    /// <summary>A MSG (<paramref name="headers"/> empty) or HMSG (<paramref name="headers"/> is the raw header block).</summary>
    void OnMsg(ReadOnlySpan<byte> subject, long sid, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload);

    void OnPing();

    void OnPong();

    void OnOk();

    void OnError(string message);
}
