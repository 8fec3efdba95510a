using System.Text;

namespace Kawa.Dataflow.Tests.Core.Sources;

public class DelimitedStreamSourceTests
{
    private static MemoryStream Stream(string text) => new(Encoding.UTF8.GetBytes(text));

    private static async Task<List<Message<T>>> ReadAllAsync<T>(ISource<T> source)
    {
        var messages = new List<Message<T>>();
        while (true)
        {
            var delivery = await source.ReceiveAsync();
            if (delivery.IsEndOfStream)
            {
                return messages;
            }

            messages.Add(delivery.Message);
        }
    }

    [Test]
    public async Task ReceiveAsync_LfAndCrLfLines_YieldsRecordsWithoutLineEndings()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("one\r\ntwo\nthree"));

        var records = await ReadAllAsync(source);

        Assert.That(records.Select(r => r.Value), Is.EqualTo(new[] { "one", "two", "three" }));
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True, "the end is stable");
    }

    [Test]
    public async Task ReceiveAsync_EmptyStream_EndsAtOnce()
    {
        var source = DelimitedStreamSource.ForStrings(Stream(""));

        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task ReceiveAsync_DelimiterOnly_YieldsOneEmptyRecordThenEnds()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("\r\n"));

        var records = await ReadAllAsync(source);

        Assert.That(records.Select(r => r.Value), Is.EqualTo(new[] { "" }), "a trailing delimiter ends the last record; it does not start another");
    }

    [Test]
    public async Task ReceiveAsync_CrLfSplitAcrossReads_TrimsTheCarriageReturn()
    {
        // One byte per read: every "\r" arrives without the "\n" that follows it.
        var source = DelimitedStreamSource.ForStrings(new TrickleStream(Encoding.UTF8.GetBytes("ab\r\n\r\ncd\r\nlast"), chunk: 1));

        var records = await ReadAllAsync(source);

        Assert.That(records.Select(r => r.Value), Is.EqualTo(new[] { "ab", "", "cd", "last" }));
    }

    [Test]
    public async Task ReceiveAsync_CarriageReturnNotBeforeNewline_IsKept()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("a\rb\n"));

        Assert.That((await ReadAllAsync(source)).Select(r => r.Value), Is.EqualTo(new[] { "a\rb" }));
    }

    [Test]
    public async Task ReceiveAsync_EndlessRecordWithoutDelimiter_FailsAfterReadingABoundedAmount()
    {
        var endless = new EndlessStream();
        var source = DelimitedStreamSource.ForBytes(endless, new DelimitedStreamOptions { MaxRecordLength = 100_000, Name = "no-newline" });

        var error = await Assert.ThrowsAsync<RecordTooLongException>(async () => await source.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.That(error!.RecordNumber, Is.EqualTo(1UL));
        Assert.That(error.Message, Does.Contain("'no-newline'").And.Contain("100000 bytes"));
        Assert.That(endless.BytesRead, Is.InRange(100_001, 100_000 + 64 * 1024), "memory stays bounded: the source stops reading soon after the limit");
    }

    /// <summary>An endless stream of 'x' with no delimiter, counting what was read from it.</summary>
    private sealed class EndlessStream : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            buffer.Fill((byte)'x');
            BytesRead += buffer.Length;
            return buffer.Length;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Test]
    public async Task RunAsync_StreamToWriter_CopiesRecordsWithNormalizedLineEndingsAndAcksEach()
    {
        var outcomes = new List<(ulong Line, AckOutcome Outcome)>();
        var input = DelimitedStreamSource.ForStrings(Stream("a\r\nb\n\nlast without newline"), onOutcome: (line, outcome) =>
        {
            lock (outcomes)
            {
                outcomes.Add((line, outcome));
            }
        });
        var output = new StringWriter();
        var pipeline = Kawa.Dataflow.Pipeline.Create("delimited-copy")
            .From(input)
            .To(WriterDestination.ForWriter<string>(output))
            .Build();

        await pipeline.RunAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(output.ToString(), Is.EqualTo("a\nb\n\nlast without newline\n"));
        Assert.That(outcomes.OrderBy(o => o.Line), Is.EqualTo(new[] { (1UL, AckOutcome.Acked), (2UL, AckOutcome.Acked), (3UL, AckOutcome.Acked), (4UL, AckOutcome.Acked) }));
    }

    [Test]
    public async Task RunAsync_RecordTooLong_FailsAsSourceAndEveryEarlierRecordHasOneOutcome()
    {
        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<ulong, AckOutcome>();
        var settledTwice = 0;
        var input = DelimitedStreamSource.ForStrings(
            Stream("one\ntwo\n" + new string('x', 50) + "\nfour\n"),
            new DelimitedStreamOptions { MaxRecordLength = 10, Name = "big.log" },
            (line, outcome) =>
            {
                if (!outcomes.TryAdd(line, outcome))
                {
                    Interlocked.Increment(ref settledTwice);
                }
            });
        var output = new StringWriter();
        var pipeline = Kawa.Dataflow.Pipeline.Create("delimited-too-long")
            .From(input)
            .To(WriterDestination.ForWriter<string>(output))
            .Build();

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.That(error!.Stage, Is.EqualTo("source"));
        Assert.That(error.InnerException, Is.TypeOf<RecordTooLongException>());
        Assert.That(error.Message, Does.Contain("Record 3 of 'big.log'"));
        Assert.That(outcomes.Keys.Order(), Is.EqualTo(new[] { 1UL, 2UL }), "the records before it were delivered and settled; nothing after it was read");
        Assert.That(settledTwice, Is.Zero);
        var written = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] lines = ["one", "two"];
        foreach (var (line, _) in outcomes.Where(o => o.Value == AckOutcome.Acked))
        {
            Assert.That(written, Does.Contain(lines[line - 1]), $"record {line} was acked, so it was written");
        }
    }

    [Test]
    public async Task ReceiveAsync_Records_CarryLineNumberNameAndSize()
    {
        var source = DelimitedStreamSource.ForBytes(Stream("a\n\nccc\n"), new DelimitedStreamOptions { Name = "access.log" });

        var records = await ReadAllAsync(source);

        Assert.That(records, Has.Count.EqualTo(3), "an empty line is a record unless skipped");
        var third = records[2];
        Assert.That(third.Value, Is.EqualTo("ccc"u8.ToArray()));
        Assert.That(third.Topic, Is.EqualTo("access.log"));
        Assert.That(third.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(3UL));
        Assert.That(third.Attributes.GetOrDefault(MessageAttributeKeys.Stream, ""), Is.EqualTo("access.log"));
        Assert.That(third.Attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("access.log"));
        Assert.That(third.Attributes.GetOrDefault(MessageAttributeKeys.PayloadSize), Is.EqualTo(3));
    }

    [Test]
    public async Task ReceiveAsync_SkipEmptyRecords_SkipsBlankLinesButKeepsNumbering()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("a\n\nb\n"), new DelimitedStreamOptions { SkipEmptyRecords = true });

        var records = await ReadAllAsync(source);

        Assert.That(records.Select(r => r.Value), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(records[1].Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(3UL));
    }

    [Test]
    public async Task ReceiveAsync_CustomDelimiter_SplitsOnIt()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("x\0y\0"), new DelimitedStreamOptions { Delimiter = 0 });

        Assert.That((await ReadAllAsync(source)).Select(r => r.Value), Is.EqualTo(new[] { "x", "y" }));
    }

    [Test]
    public async Task ReceiveAsync_RecordOverMaxLength_ThrowsNamingRecordAndLimit()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("ok\n" + new string('x', 100) + "\nnext\n"), new DelimitedStreamOptions { MaxRecordLength = 10, Name = "big.log" });
        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo("ok"));

        var error = await Assert.ThrowsAsync<RecordTooLongException>(async () => await source.ReceiveAsync());

        Assert.That(error!.RecordNumber, Is.EqualTo(2UL));
        Assert.That(error.MaxRecordLength, Is.EqualTo(10));
        Assert.That(error.Message, Does.Contain("Record 2 of 'big.log'").And.Contain("10 bytes"));
        Assert.That(async () => await source.ReceiveAsync(), Throws.InstanceOf<RecordTooLongException>(), "the failure is stable");
    }

    [Test]
    public async Task ReceiveAsync_RecordArrivingInManySmallReads_IsAssembled()
    {
        var text = string.Concat(Enumerable.Range(0, 50).Select(i => new string((char)('a' + (i % 26)), 100) + "\n"));
        var source = DelimitedStreamSource.ForStrings(new TrickleStream(Encoding.UTF8.GetBytes(text), chunk: 7));

        var records = await ReadAllAsync(source);

        Assert.That(records, Has.Count.EqualTo(50));
        Assert.That(records.Select(r => r.Value.Length), Is.All.EqualTo(100));
        Assert.That(records[27].Value, Is.EqualTo(new string('b', 100)));
    }

    /// <summary>Returns at most <c>chunk</c> bytes per read, like a slow socket.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(chunk, count));
    }

    [Test]
    public async Task ReceiveAsync_LastRecordWithoutDelimiterOverMax_Throws()
    {
        var source = DelimitedStreamSource.ForStrings(Stream(new string('x', 11)), new DelimitedStreamOptions { MaxRecordLength = 10 });

        await Assert.ThrowsAsync<RecordTooLongException>(async () => await source.ReceiveAsync());
    }

    [Test]
    public async Task ReceiveAsync_RecordExactlyMaxLengthWithCrLf_IsAccepted()
    {
        var source = DelimitedStreamSource.ForStrings(Stream("0123456789\r\n"), new DelimitedStreamOptions { MaxRecordLength = 10 });

        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo("0123456789"));
    }

    [Test]
    public async Task ReceiveAsync_RealApacheLog_ReadsEveryLine()
    {
        var path = SharedData("access-logs/apache-combined-10k.log");
        Assert.That(File.Exists(path), Is.True, $"shared test data missing: {path}");
        await using var file = File.OpenRead(path);
        var expected = File.ReadAllLines(path);
        var source = DelimitedStreamSource.ForStrings(file, new DelimitedStreamOptions { Name = "apache" });

        var records = await ReadAllAsync(source);

        Assert.That(records.Select(r => r.Value), Is.EqualTo(expected));
        Assert.That(records[^1].Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo((ulong)expected.Length));
    }

    [Test]
    public async Task ReceiveAsync_Settled_OutcomeReachesCallbackWithLineNumber()
    {
        var seen = new List<(ulong, AckOutcome)>();
        var source = DelimitedStreamSource.ForStrings(Stream("a\nb\n"), onOutcome: (line, outcome) => seen.Add((line, outcome)));

        (await source.ReceiveAsync()).Ack.Ack();
        (await source.ReceiveAsync()).Ack.Nack();

        Assert.That(seen, Is.EqualTo(new[] { (1UL, AckOutcome.Acked), (2UL, AckOutcome.Negative()) }));
    }

    [Test]
    public void Create_InvalidOptions_ReportsEveryProblem()
    {
        var error = Assert.Throws<ArgumentException>(() => DelimitedStreamSource.ForBytes(Stream(""), new DelimitedStreamOptions { MaxRecordLength = 0, Name = "" }));

        Assert.That(error!.Message, Does.Contain("MaxRecordLength").And.Contain("Name"));
    }

    [Test]
    public async Task DisposeAsync_ClosesStreamUnlessLeaveOpen()
    {
        var closed = Stream("a\n");
        var open = Stream("a\n");

        await DelimitedStreamSource.ForStrings(closed).DisposeAsync();
        await DelimitedStreamSource.ForStrings(open, new DelimitedStreamOptions { LeaveOpen = true }).DisposeAsync();

        Assert.That(closed.CanRead, Is.False);
        Assert.That(open.CanRead, Is.True);
    }

    // ../shared next to the repository root (or next to an ancestor, for a git worktree nested deeper).
    internal static string SharedData(string relative)
    {
        for (var dir = new DirectoryInfo(RepoRoot()).Parent; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data", relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return Path.Combine(RepoRoot(), "..", "shared", "data", relative);
    }

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Kawa.Dataflow.sln not found above the test assembly.");
    }
}
