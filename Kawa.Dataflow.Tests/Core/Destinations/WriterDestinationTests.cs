using System.Text;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Destinations;

public class WriterDestinationTests
{
    [Test]
    public async Task ForWriter_Send_WritesEachWithDelimiterFlushesThenAcks()
    {
        var writer = new FlushTrackingWriter();
        using var destination = WriterDestination.ForWriter<int>(writer, m => $"n={m.Value}");
        var probe = new AckProbe();

        await destination.SendAsync(probe, new Messages<int>([new Message<int>(1), new Message<int>(2)]));

        Assert.That(writer.ToString(), Is.EqualTo("n=1\nn=2\n"));
        Assert.That(writer.Flushes, Is.EqualTo(1));
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ForStream_Bytes_WritesRawBytesAndCustomDelimiter()
    {
        var stream = new MemoryStream();
        using var destination = WriterDestination.ForStream(stream, "\r\n"u8.ToArray());

        await destination.SendAsync(AckToken.None(), new Message<byte[]>("abc"u8.ToArray()));

        Assert.That(Encoding.UTF8.GetString(stream.ToArray()), Is.EqualTo("abc\r\n"));
    }

    [Test]
    public async Task RunAsync_ParallelSends_LinesNeverInterleaveAndEachIsAckedOnce()
    {
        var stream = new YieldingStream();
        using var destination = WriterDestination.ForStream<int>(stream, m => Encoding.UTF8.GetBytes($"record-{m.Value:D4}-" + new string('x', 200)));
        var source = new Kawa.Dataflow.Tests.Core.Pipeline.TestSource<int>(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Ints(1000));
        var pipeline = Kawa.Dataflow.Pipeline.Create("writer-parallel")
            .From(source)
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 4 })
            .Build(new PipelineOptions { SegmentSize = 1 });

        await pipeline.RunAsync().WaitAsync(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Generous);

        var lines = Encoding.UTF8.GetString(stream.ToArray()).Split('\n');
        Assert.That(lines[^1], Is.Empty, "every record ends with its delimiter");
        Assert.That(lines[..^1].Order(), Is.EqualTo(Enumerable.Range(0, 1000).Select(i => $"record-{i:D4}-" + new string('x', 200))));
        Assert.That(source.Tokens.Select(t => (t.Outcome, t.Completions)), Is.All.EqualTo((AckOutcome.Acked as AckOutcome?, 1)));
    }

    [Test]
    public async Task SendAsync_WriteFails_ThrowsWithoutAcking()
    {
        var stream = new MemoryStream();
        await stream.DisposeAsync();
        using var destination = WriterDestination.ForStream(stream);
        var probe = new AckProbe();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await destination.SendAsync(probe, new Message<byte[]>([1])));
        Assert.That(probe.IsCompleted, Is.False);
    }

    [Test]
    public async Task SendAsync_FlushFails_ThrowsWithoutAcking()
    {
        var writer = new FlushTrackingWriter { FailFlush = true };
        using var destination = WriterDestination.ForWriter<string>(writer);
        var probe = new AckProbe();

        await Assert.ThrowsAsync<IOException>(async () => await destination.SendAsync(probe, new Message<string>("x")));
        Assert.That(probe.IsCompleted, Is.False);
    }

    /// <summary>A stream whose writes complete asynchronously, as a socket's or a file's may: sends not serialized would interleave.</summary>
    private sealed class YieldingStream : MemoryStream
    {
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            Write(buffer.Span);
        }
    }

    private sealed class FlushTrackingWriter : StringWriter
    {
        public int Flushes { get; private set; }

        public bool FailFlush { get; init; }

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            if (FailFlush)
            {
                throw new IOException("disk full");
            }

            Flushes++;
            return base.FlushAsync(cancellationToken);
        }
    }
}
