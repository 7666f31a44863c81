# shoal-minio:dev, built by `make image-minio` (scripts/image.sh): the
# pinned MinIO server that the Makefile builds static (bin/minio/minio),
# FROM scratch, nothing pulled. rootfs.tar carries /minio, /tmp (1777) and
# /data (65532:65532, 0770). MINIO_ROOT_USER and MINIO_ROOT_PASSWORD
# choose the credentials (MinIO's defaults otherwise: set them).
FROM scratch
ADD rootfs.tar /
USER 65532:65532
# MinIO keeps its certificates directory under $HOME/.minio.
ENV HOME=/tmp MINIO_BROWSER=off MINIO_UPDATE=off
VOLUME /data
EXPOSE 9000
ENTRYPOINT ["/minio"]
CMD ["server", "/data", "--address", ":9000"]
