using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Tests.Nats.Protocol;

/// <summary>Writes every parsed operation as one line (payloads by length and hash) for comparison.</summary>
internal sealed class RecordingHandler : INatsProtocolHandler
{
    public List<string> Ops { get; } = [];

    public void OnInfo(ReadOnlySpan<byte> json) => Ops.Add("INFO " + Encoding.UTF8.GetString(json));

    public void OnMsg(ReadOnlySpan<byte> subject, long sid, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
        => Ops.Add($"MSG {Encoding.UTF8.GetString(subject)} {sid} [{Encoding.UTF8.GetString(replyTo)}] h={Hash(headers)} p={Hash(payload)}");

    public void OnPing() => Ops.Add("PING");

    public void OnPong() => Ops.Add("PONG");

    public void OnOk() => Ops.Add("+OK");

    public void OnError(string message) => Ops.Add("-ERR " + message);

    private static string Hash(in ReadOnlySequence<byte> data)
        => data.Length + ":" + Convert.ToHexString(SHA256.HashData(data.ToArray()))[..16];
}
