using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Kawa.Dataflow.Testing;

namespace Kawa.Dataflow.Tests.Contracts;

/// <summary>Remembers the outcome each payload got, for <see cref="SourceUnderTest{T}.OutcomeSeen"/>.</summary>
internal sealed class OutcomeLog<TKey>
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, AckOutcome> _seen = new();

    public void Record(TKey key, AckOutcome outcome) => _seen.TryAdd(key, outcome);

    public AckOutcome? Get(TKey key) => _seen.TryGetValue(key, out var outcome) ? outcome : null;
}

// The in-memory sources hand each outcome to their onOutcome callback (a channel, a sequence or a stream cannot take a
// message back), so they declare RedeliversNegativeAcks = false and are checked not to redeliver.
public class ChannelSourceContractTests : SourceContractTests<int>
{
    protected override SourceContract<int> Contract { get; } = new ChannelContract { RedeliversNegativeAcks = false };

    private sealed class ChannelContract : SourceContract<int>
    {
        protected override ValueTask<SourceUnderTest<int>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var channel = Channel.CreateUnbounded<Message<int>>();
            for (var i = 0; i < messageCount; i++)
            {
                channel.Writer.TryWrite(new Message<int>(i));
            }

            if (endAfterMessages)
            {
                channel.Writer.Complete();
            }

            var log = new OutcomeLog<int>();
            return new(new SourceUnderTest<int> { Source = new ChannelSource<int>(channel.Reader, (m, o) => log.Record(m.Value, o)), OutcomeSeen = m => log.Get(m.Value) });
        }
    }
}

public class EnumerableSourceContractTests : SourceContractTests<int>
{
    protected override SourceContract<int> Contract { get; } = new EnumerableContract { RedeliversNegativeAcks = false };

    private sealed class EnumerableContract : SourceContract<int>
    {
        protected override ValueTask<SourceUnderTest<int>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var log = new OutcomeLog<int>();
            var source = endAfterMessages
                ? new EnumerableSource<int>(Enumerable.Range(0, messageCount).Select(i => new Message<int>(i)), (m, o) => log.Record(m.Value, o))
                : new EnumerableSource<int>(ThenWaitForever(messageCount), (m, o) => log.Record(m.Value, o));
            return new(new SourceUnderTest<int> { Source = source, OutcomeSeen = m => log.Get(m.Value), Cleanup = source.DisposeAsync });
        }

        private static async IAsyncEnumerable<Message<int>> ThenWaitForever(int count, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            for (var i = 0; i < count; i++)
            {
                yield return new Message<int>(i);
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }
}

public class DelimitedStreamSourceContractTests : SourceContractTests<byte[]>
{
    protected override SourceContract<byte[]> Contract { get; } = new DelimitedContract { RedeliversNegativeAcks = false };

    private sealed class DelimitedContract : SourceContract<byte[]>
    {
        protected override async ValueTask<SourceUnderTest<byte[]>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var text = string.Concat(Enumerable.Range(0, messageCount).Select(i => $"record-{i}\n"));
            Stream stream;
            if (endAfterMessages)
            {
                stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
            }
            else
            {
                // A stream that stays open after its records, like a socket or stdin.
                var pipe = new Pipe();
                await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(text));
                stream = pipe.Reader.AsStream();
            }

            var log = new OutcomeLog<ulong>();
            var source = DelimitedStreamSource.ForBytes(stream, onOutcome: log.Record);
            return new SourceUnderTest<byte[]>
            {
                Source = source,
                OutcomeSeen = m => log.Get(m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence)),
                Cleanup = source.DisposeAsync,
            };
        }
    }
}

public class MergedSourceContractTests : SourceContractTests<int>
{
    protected override SourceContract<int> Contract { get; } = new MergedContract { RedeliversNegativeAcks = false };

    private sealed class MergedContract : SourceContract<int>
    {
        protected override ValueTask<SourceUnderTest<int>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var log = new OutcomeLog<int>();
            var channels = new[] { Channel.CreateUnbounded<Message<int>>(), Channel.CreateUnbounded<Message<int>>() };
            for (var i = 0; i < messageCount; i++)
            {
                channels[i % 2].Writer.TryWrite(new Message<int>(i));
            }

            if (endAfterMessages)
            {
                Array.ForEach(channels, c => c.Writer.Complete());
            }

            var merged = Kawa.Dataflow.Sources.Merge(channels.Select(c => (ISource<int>)new ChannelSource<int>(c.Reader, (m, o) => log.Record(m.Value, o))).ToArray());
            return new(new SourceUnderTest<int> { Source = merged, OutcomeSeen = m => log.Get(m.Value), Cleanup = merged.DisposeAsync });
        }
    }
}
