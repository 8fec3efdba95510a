using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Tests.Nats.Protocol;

/// <summary>Received headers parsed on first use read exactly as headers parsed at once.</summary>
public class NatsHeadersTests
{
    private static readonly string[] Blocks =
    [
        "NATS/1.0 409 Consumer Deleted\r\nNats-Pending-Messages: 5\r\nX: 1\r\nX: 2\r\n\r\n",
        "NATS/1.0 100 Idle Heartbeat\r\n\r\n",
        "NATS/1.0 503\r\n\r\n",
        "NATS/1.0\r\nTrace-Id: abc\r\n\r\n",
        "NATS/1.0 abc not a code\r\nA: 1\r\n\r\n",
        "GARBAGE\r\nno colon here\r\n: no name\r\nGood: yes\r\n\r\n",
        "NATS/1.0\r\n\r\n",
        "NATS/1.0 404 No Messages",
    ];

    [TestCaseSource(nameof(Blocks))]
    public void FromReceived_AnyBlock_SameAsParse(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var eager = NatsHeaders.Parse(bytes);

        var lazy = NatsHeaders.FromReceived(bytes);
        var statusBeforeParse = lazy.StatusCode;
        var hasEntriesBeforeParse = lazy.HasEntries;

        Assert.That(statusBeforeParse, Is.EqualTo(eager.StatusCode));
        Assert.That(hasEntriesBeforeParse, Is.EqualTo(eager.Count > 0));
        Assert.That(lazy.StatusDescription, Is.EqualTo(eager.StatusDescription));
        Assert.That(lazy.Entries, Is.EqualTo(eager.Entries));
        Assert.That(lazy.HasEntries, Is.EqualTo(eager.Count > 0));
        Assert.That(lazy.ToString(), Is.EqualTo(eager.ToString()));
    }

    [TestCaseSource(nameof(Blocks))]
    public void ReadStatusCode_BlockSplitAcrossSegments_SameAsParse(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var expected = NatsHeaders.Parse(bytes).StatusCode;

        for (var split = 1; split < bytes.Length; split++)
        {
            Assert.That(NatsHeaders.ReadStatusCode(TwoSegments(bytes, split)), Is.EqualTo(expected), $"split at {split}");
        }
    }

    [Test]
    public void FromReceived_Mutated_KeepsParsedFieldsAndAddsNew()
    {
        var headers = NatsHeaders.FromReceived("NATS/1.0\r\nA: 1\r\n\r\n"u8.ToArray());

        headers.Add("B", "2");
        headers.Set("A", "3");

        Assert.That(headers.Entries, Is.EqualTo(new KeyValuePair<string, string>[] { new("B", "2"), new("A", "3") }));
    }

    private static ReadOnlySequence<byte> TwoSegments(byte[] bytes, int split)
    {
        var first = new Segment(bytes.AsMemory(0, split));
        var last = first.Append(bytes.AsMemory(split));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
