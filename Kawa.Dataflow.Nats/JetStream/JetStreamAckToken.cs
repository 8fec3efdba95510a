namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>
/// The <see cref="AckToken"/> of one JetStream message: its outcome is queued (never blocking the caller) and sent
/// by the pull consumer's ack sender as <c>+ACK</c>, <c>-NAK {"delay": ns}</c>, <c>+TERM</c>, or <c>+WPI</c> for
/// <see cref="AckToken.InProgress"/>.
/// </summary>
/// <remarks>What becomes of the ack when sending fails: while reconnecting it waits in the reconnect buffer; if that
/// stays full, or the server never gets it, the message is redelivered after the consumer's ack wait (at-least-once:
/// a duplicate, never a loss). Only a closed connection is reported, from the consumer's next receive.</remarks>
internal sealed class JetStreamAckToken : AckToken
{
    private readonly NatsPullConsumer _consumer;

    internal JetStreamAckToken(NatsPullConsumer consumer, JetStreamMsg message)
    {
        _consumer = consumer;
        Message = message;
    }

    public JetStreamMsg Message { get; }

    protected override void OnCompleted(AckOutcome outcome) => _consumer.EnqueueAck(Message, outcome.Kind, outcome.Delay);

    protected override void OnInProgress() => _consumer.EnqueueAck(Message, kind: null, TimeSpan.Zero);
}
