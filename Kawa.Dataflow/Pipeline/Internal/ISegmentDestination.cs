namespace Kawa.Dataflow;

/// <summary>
/// A destination that takes a whole segment in one call: the destination stage's fast path, so that per-call costs
/// (a lock, buffer accounting) are paid once per segment rather than once per message. Internal: the public contract
/// stays <see cref="IDestination{T}.SendAsync"/>, one token and its messages per call.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Each envelope is one message with its own token, exactly as if <see cref="IDestination{T}.SendAsync"/> had been called
/// once per envelope, in order. Either the call throws having taken none of them (the caller keeps every token), or it
/// takes charge of every token: the ones it took are settled as the destination's contract says, the ones it could not
/// take (cancelled while waiting for room) it negatively acks itself. It copies what it keeps: the caller reuses
/// <c>items</c> once the call completes.
/// </remarks>
internal interface ISegmentDestination<T>
{
    ValueTask SendSegmentAsync(Envelope<T>[] items, int count, CancellationToken cancellationToken);
}
