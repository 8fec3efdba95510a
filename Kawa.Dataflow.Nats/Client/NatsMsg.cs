using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>A received core NATS message; owns its payload bytes.</summary>
internal sealed class NatsMsg(string subject, string? replyTo, NatsHeaders? headers, byte[] data)
{
    public string Subject { get; } = subject;

    public string? ReplyTo { get; } = replyTo;

    public NatsHeaders? Headers { get; } = headers;

    public byte[] Data { get; } = data;

    public override string ToString() => $"NatsMsg {{ Subject = {Subject}, Bytes = {Data.Length} }}";
}
