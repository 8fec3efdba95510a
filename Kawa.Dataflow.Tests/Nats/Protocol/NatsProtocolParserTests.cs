using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Protocol;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Protocol;

public class NatsProtocolParserTests
{
    private static List<string> ParseAll(byte[] bytes)
    {
        var handler = new RecordingHandler();
        var buffer = new ReadOnlySequence<byte>(bytes);
        var consumed = new NatsProtocolParser().Parse(buffer, handler);
        Assert.That(buffer.Slice(consumed).Length, Is.Zero, "everything complete should be consumed");
        return handler.Ops;
    }

    /// <summary>Feeds <paramref name="bytes"/> through a pipe in random chunks and small segments.</summary>
    private static async Task<List<string>> ParseChunkedAsync(byte[] bytes, Random random, int maxChunk)
    {
        var pipe = new Pipe(new PipeOptions(minimumSegmentSize: random.Next(16, 4096), pauseWriterThreshold: 0));
        var parser = new NatsProtocolParser();
        var handler = new RecordingHandler();
        var offset = 0;
        long left = 0;
        while (offset < bytes.Length)
        {
            // Mostly tiny chunks (every split point gets hit), sometimes a big one so the 1 MiB payload does not take forever.
            var size = random.Next(10) == 0 ? random.Next(1, 65_536) : random.Next(1, maxChunk + 1);
            size = Math.Min(size, bytes.Length - offset);
            await pipe.Writer.WriteAsync(bytes.AsMemory(offset, size));
            offset += size;
            Assert.That(pipe.Reader.TryRead(out var result), Is.True);
            var consumed = parser.Parse(result.Buffer, handler);
            left = result.Buffer.Slice(consumed).Length;
            pipe.Reader.AdvanceTo(consumed, result.Buffer.End);
        }

        Assert.That(left, Is.Zero, "no bytes left unparsed");
        return handler.Ops;
    }

    [Test]
    public void Parse_AllOperations_ReportsEach()
    {
        var bytes = Encoding.ASCII.GetBytes(
            "INFO {\"server_id\":\"x\"}\r\n+OK\r\nPING\r\npong\r\n-ERR 'Unknown Protocol Operation'\r\n" +
            "MSG foo.bar 9 5\r\nhello\r\nMSG foo 10 reply.to 0\r\n\r\n" +
            "HMSG foo 3 _INBOX.x 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n");

        var ops = ParseAll(bytes);

        Assert.That(ops, Has.Count.EqualTo(8));
        Assert.That(ops[0], Is.EqualTo("INFO {\"server_id\":\"x\"}"));
        Assert.That(ops[1..5], Is.EqualTo(new[] { "+OK", "PING", "PONG", "-ERR Unknown Protocol Operation" }));
        Assert.That(ops[5], Does.StartWith("MSG foo.bar 9 [] h=0:").And.Contain("p=5:"));
        Assert.That(ops[6], Does.StartWith("MSG foo 10 [reply.to] h=0:").And.Contain("p=0:"));
        Assert.That(ops[7], Does.StartWith("MSG foo 3 [_INBOX.x] h=18:").And.Contain("p=5:"));
    }

    [Test]
    public void Parse_IncompleteFrame_ConsumesNothingUntilComplete()
    {
        var bytes = Encoding.ASCII.GetBytes("MSG foo 1 5\r\nhel");
        var handler = new RecordingHandler();
        var buffer = new ReadOnlySequence<byte>(bytes);

        var consumed = new NatsProtocolParser().Parse(buffer, handler);

        Assert.That(handler.Ops, Is.Empty);
        Assert.That(buffer.Slice(consumed).Length, Is.EqualTo(bytes.Length));
    }

    [TestCase("BOGUS\r\n", "Unknown protocol operation 'BOGUS'")]
    [TestCase("MSG foo x 5\r\nhello\r\n", "Unreadable sid")]
    [TestCase("MSG foo\r\n", "Malformed MSG arguments")]
    [TestCase("HMSG foo 1 10 5\r\nhello\r\n", "header size exceeds total size")]
    [TestCase("MSG foo 1 2\r\nhello\r\n", "not followed by CRLF")]
    public void Parse_Malformed_ThrowsNamingTheProblem(string input, string expected)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(input));

        var ex = Assert.Throws<NatsProtocolException>(() => new NatsProtocolParser().Parse(buffer, new RecordingHandler()));

        Assert.That(ex!.Message, Does.Contain(expected));
    }

    [Test]
    public async Task Parse_RecordedServerStreamInRandomChunks_SameResultAsWhole()
    {
        var recorded = await RecordRealServerStreamAsync();
        var whole = ParseAll(recorded);
        Assert.That(whole.Count(o => o.StartsWith("MSG", StringComparison.Ordinal)), Is.EqualTo(6));
        Assert.That(whole, Has.Some.Contains("p=1258291:"), "the >= 1 MiB payload is in the recording");
        Assert.That(whole.Last(), Is.EqualTo("PONG"));

        for (var seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            var maxChunk = seed % 4 switch { 0 => 1, 1 => 7, 2 => 300, _ => 70_000 };
            var chunked = await ParseChunkedAsync(recorded, random, maxChunk == 1 ? 3 : maxChunk);
            Assert.That(chunked, Is.EqualTo(whole), $"seed {seed}");
        }
    }

    [Test]
    public async Task Parse_EverySplitPointOfSmallFrames_SameResult()
    {
        var bytes = Encoding.ASCII.GetBytes("HMSG a.b 3 r.s 30 35\r\nNATS/1.0 503 No Responders\r\n\r\nhello\r\nMSG x 1 0\r\n\r\nPING\r\n");
        var whole = ParseAll(bytes);

        for (var split = 1; split < bytes.Length; split++)
        {
            var pipe = new Pipe();
            var parser = new NatsProtocolParser();
            var handler = new RecordingHandler();
            foreach (var part in new[] { bytes.AsMemory(0, split), bytes.AsMemory(split) })
            {
                await pipe.Writer.WriteAsync(part);
                pipe.Reader.TryRead(out var result);
                pipe.Reader.AdvanceTo(parser.Parse(result.Buffer, handler), result.Buffer.End);
            }

            Assert.That(handler.Ops, Is.EqualTo(whole), $"split at {split}");
        }
    }

    /// <summary>Records the raw bytes a real server sends to a subscriber: INFO, MSG, HMSG, a 1.2 MiB payload, PONG.</summary>
    private static async Task<byte[]> RecordRealServerStreamAsync()
    {
        await using var server = await NatsServerProcess.StartAsync("max_payload: 4194304\n");
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.Port);
        var stream = tcp.GetStream();
        var big = new byte[1258291];
        new Random(42).NextBytes(big);
        var commands = new MemoryStream();
        void Write(string s) => commands.Write(Encoding.ASCII.GetBytes(s));
        Write("CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nSUB rec.> 1\r\n");
        Write("PUB rec.a 5\r\nhello\r\nPUB rec.b reply.x 0\r\n\r\n");
        const string hdr = "NATS/1.0\r\nKey: Value one\r\n\r\n";
        Write($"HPUB rec.c {hdr.Length} {hdr.Length + 5}\r\n{hdr}world\r\n");
        Write($"PUB rec.big {big.Length}\r\n");
        commands.Write(big);
        Write("\r\nHPUB rec.d reply.y 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        Write("PUB rec.e 3\r\nend\r\nPING\r\n");
        await stream.WriteAsync(commands.ToArray());

        var recorded = new MemoryStream();
        var buffer = new byte[65536];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!EndsWith(recorded, "PONG\r\n"u8))
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "server did not answer");
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(read, Is.GreaterThan(0), "server closed: " + Encoding.ASCII.GetString(recorded.ToArray()[..Math.Min(200, (int)recorded.Length)]));
            recorded.Write(buffer, 0, read);
        }

        return recorded.ToArray();
    }

    private static bool EndsWith(MemoryStream stream, ReadOnlySpan<byte> suffix)
        => stream.Length >= suffix.Length && stream.GetBuffer().AsSpan((int)stream.Length - suffix.Length, suffix.Length).SequenceEqual(suffix);
}
